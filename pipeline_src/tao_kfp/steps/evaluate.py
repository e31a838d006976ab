"""Steps 5 and 8: evaluate a checkpoint on the test split and publish its metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from tao_kfp.steps import common
from tao_kfp.tao import key_args, run_tao


@dataclass
class EvaluateResult:
    """Scores of one evaluation; top1 is exact (trace / sum of the confusion matrix)."""

    top1_accuracy: float
    top_k_accuracy: Optional[float]
    top_k: int
    loss: Optional[float]
    class_names: List[str]
    confusion_matrix: List[List[int]]


def _class_order(classmap: str, parsed_names: List[str]) -> List[str]:
    """Class names in index order: from classmap.json when present, else the given names."""
    path = Path(classmap) if classmap else None
    if path and path.is_file():
        mapping: Dict[str, int] = json.loads(path.read_text())
        return [name for name, _ in sorted(mapping.items(), key=lambda item: item[1])]
    return list(parsed_names)


def run_evaluate(
    *,
    spec_path: str,
    model_path: str,
    results_dir: str,
    classmap: str = "",
    metrics=None,
    classification_metrics=None,
) -> EvaluateResult:
    """Evaluates ``model_path`` and logs top-1, top-k, exact per-class P/R/F1 and the matrix.

    TAO ``evaluate`` gives the loss and the top-k accuracy. The confusion matrix and the
    per-class figures come from per-image predictions (``inference -d`` over the same labelled
    evaluation folder), because ``evaluate`` prints the matrix through numpy, which elides
    arrays over 1000 cells (from 32 classes on), and prints per-class figures with 2 decimals.
    Where the printed matrix is complete it is compared with the computed one as a
    cross-check: a difference is reported in the log and as ``printout_agrees`` = 0.

    TAO 5.0 ignores ``-m`` on evaluate, so the model goes into ``eval_config.model_path`` of a
    spec written for this evaluation; ``eval_config.eval_dataset_path`` is the test split.

    Args:
        spec_path: Train or retrain spec rendered by step 1.
        model_path: Checkpoint to evaluate (an output of train or retrain).
        results_dir: Folder for this evaluation's spec, log and predictions.
        classmap: ``classmap.json`` written by train (class order; inference needs it).
        metrics: kfp ``Metrics`` artifact (optional).
        classification_metrics: kfp ``ClassificationMetrics`` artifact (optional).

    Returns:
        The scores.
    """
    from tao_kfp import parsers
    from tao_kfp import spec as spec_module
    from tao_kfp.steps.inference import predict_labelled_folder

    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    spec = common.write_spec_with(
        spec_path, {"eval_config.model_path": model_path}, results / "spec.cfg"
    )
    output = run_tao(
        ["evaluate", "-e", str(spec)] + key_args(required_by_3x=True),
        log_path=results / "tao.log",
    )
    loss, top_k_accuracy = parsers.parse_evaluate_scores(output)
    eval_config = spec_module.load_spec(spec).eval_config
    top_k = int(eval_config.top_k) or 5
    rows, _ = predict_labelled_folder(
        model_path=model_path,
        spec_path=str(spec),
        classmap=classmap,
        source=eval_config.eval_dataset_path,
        results_dir=str(results / "predictions"),
    )
    names = _class_order(classmap, sorted({row.true_class for row in rows}))
    matrix = parsers.confusion_from_labels(
        [row.true_class for row in rows], [row.predicted for row in rows], names
    )
    top1 = parsers.top1_accuracy(matrix)
    result = EvaluateResult(
        top1_accuracy=top1,
        top_k_accuracy=top_k_accuracy,
        top_k=top_k,
        loss=loss,
        class_names=names,
        confusion_matrix=matrix,
    )
    values: Dict[str, Optional[float]] = {
        "top1_accuracy": top1,
        f"top{top_k}_accuracy": top_k_accuracy,
        "loss": loss,
        "printout_agrees": printout_agreement(output, matrix),
    }
    for name, per_class in parsers.class_scores(matrix, names).items():
        values[f"{name}_precision"] = per_class.precision
        values[f"{name}_recall"] = per_class.recall
        values[f"{name}_f1"] = per_class.f1
    common.log_metrics(metrics, values)
    if classification_metrics is not None:
        classification_metrics.log_confusion_matrix(names, matrix)
    print(
        f"top-1 accuracy {top1:.4f} ({len(rows)} images, {len(names)} classes), top-{top_k} "
        f"accuracy {top_k_accuracy}, loss {loss}",
        flush=True,
    )
    return result


def printout_agreement(output: str, matrix: List[List[int]]) -> Optional[float]:
    """1.0 if evaluate's printed matrix equals ``matrix``, 0.0 if not, None if not printed whole.

    A difference is not fatal (TAO's evaluate and inference load images through different code),
    but it is printed so a wrong class order or data mix-up shows.
    """
    from tao_kfp import parsers

    try:
        printed = parsers.parse_evaluate_output(output).confusion_matrix
    except parsers.ParseError as error:
        print(f"note: evaluate's printed report was not parsed ({error})", flush=True)
        return None
    if not printed:
        print("note: evaluate printed an elided confusion matrix (over 1000 cells)", flush=True)
        return None
    if printed == matrix:
        return 1.0
    print(
        "WARNING: evaluate's printed confusion matrix differs from the one built from "
        f"inference's per-image predictions.\n  printed : {printed}\n  computed: {matrix}",
        flush=True,
    )
    return 0.0
