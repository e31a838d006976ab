"""Step 6: prune the trained model to the output path step 1 decided."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tao_kfp.steps import common
from tao_kfp.tao import key_args, run_tao


@dataclass
class PruneResult:
    """The pruned model and how much smaller it is."""

    pruned_model: str
    ratio: float
    original_mb: float
    pruned_mb: float


def run_prune(
    *, model_path: str, output_path: str, threshold: float, results_dir: str, metrics=None
) -> PruneResult:
    """Runs ``prune -m MODEL -o OUT -pth THRESHOLD`` and logs the parameter ratio and sizes.

    Args:
        model_path: Trained checkpoint (output of train).
        output_path: Pruned model path decided in step 1 (the retrain spec points at it).
        threshold: ``-pth``; higher removes more filters.
        results_dir: Folder for the log.
        metrics: kfp ``Metrics`` artifact (optional).

    Returns:
        The pruned model path, TAO's pruned/original parameter ratio and the file sizes.
    """
    from tao_kfp import parsers

    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)  # a retried step must not trip over the previous attempt
    output = run_tao(
        ["prune", "-m", model_path, "-o", str(out), "-pth", str(threshold), "-eq", "union"]
        + key_args(),
        log_path=Path(results_dir) / "tao.log",
    )
    if not out.is_file():
        raise FileNotFoundError(f"prune reported success but wrote no {out}; see its log above.")
    result = PruneResult(
        pruned_model=str(out),
        ratio=parsers.parse_prune_output(output),
        original_mb=common.size_mb(model_path),
        pruned_mb=common.size_mb(out),
    )
    common.log_metrics(
        metrics,
        {
            "parameter_ratio": result.ratio,
            "original_size_mb": result.original_mb,
            "pruned_size_mb": result.pruned_mb,
            "size_ratio": result.pruned_mb / result.original_mb if result.original_mb else None,
        },
    )
    print(
        f"pruned {model_path} -> {out}: parameters x{result.ratio:.3f}, "
        f"{result.original_mb} MB -> {result.pruned_mb} MB",
        flush=True,
    )
    return result
