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
    """Class names in index order: from classmap.json when present, else from the report."""
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
    """Evaluates ``model_path`` with TAO and logs top-1, top-k, per-class P/R/F1 and the matrix.

    TAO 5.0 ignores ``-m`` on evaluate, so the model goes into ``eval_config.model_path`` of a
    spec written for this evaluation; ``eval_config.eval_dataset_path`` is the test split.

    Args:
        spec_path: Train or retrain spec rendered by step 1.
        model_path: Checkpoint to evaluate (an output of train or retrain).
        results_dir: Folder for this evaluation's spec and log.
        classmap: ``classmap.json`` written by train, for the class order.
        metrics: kfp ``Metrics`` artifact (optional).
        classification_metrics: kfp ``ClassificationMetrics`` artifact (optional).

    Returns:
        The parsed scores.
    """
    from tao_kfp import parsers

    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    spec = common.write_spec_with(
        spec_path, {"eval_config.model_path": model_path}, results / "spec.cfg"
    )
    output = run_tao(["evaluate", "-e", str(spec)] + key_args(), log_path=results / "tao.log")
    parsed = parsers.parse_evaluate_output(output)
    from tao_kfp import spec as spec_module

    top_k = int(spec_module.load_spec(spec).eval_config.top_k) or 5
    names = _class_order(classmap, parsed.class_names)
    result = EvaluateResult(
        top1_accuracy=parsed.top1_accuracy,
        top_k_accuracy=parsed.top_k_accuracy,
        top_k=top_k,
        loss=parsed.loss,
        class_names=names,
        confusion_matrix=parsed.confusion_matrix,
    )
    values: Dict[str, Optional[float]] = {
        "top1_accuracy": parsed.top1_accuracy,
        f"top{top_k}_accuracy": parsed.top_k_accuracy,
        "loss": parsed.loss,
    }
    for name, per_class in parsed.per_class.items():
        values[f"{name}_precision"] = per_class.precision
        values[f"{name}_recall"] = per_class.recall
        values[f"{name}_f1"] = per_class.f1
    common.log_metrics(metrics, values)
    if classification_metrics is not None:
        classification_metrics.log_confusion_matrix(names, parsed.confusion_matrix)
    print(
        f"top-1 accuracy {parsed.top1_accuracy:.4f}, top-{top_k} accuracy "
        f"{parsed.top_k_accuracy}, loss {parsed.loss}",
        flush=True,
    )
    return result
