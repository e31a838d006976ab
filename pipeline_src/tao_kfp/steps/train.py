"""Steps 4 and 7: train, and retrain the pruned model (same TAO command, other spec)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tao_kfp.steps import common, report
from tao_kfp.tao import key_args, run_tao


@dataclass
class TrainResult:
    """The exact checkpoint found in weights/, the class map and the final validation scores."""

    model_path: str
    classmap: str
    arch: str
    val_accuracy: Optional[float]
    val_loss: Optional[float]
    epochs_completed: int


def run_train(
    *,
    spec_path: str,
    results_dir: str,
    dataset_dir: str,
    pretrained_model: str,
    num_gpus: str = "1",
    metrics=None,
    report_html=None,
    title: str = "Training",
) -> TrainResult:
    """Runs ``train`` and publishes accuracy/loss metrics and an HTML report with curves.

    Args:
        spec_path: Spec rendered by step 1 (train.cfg or retrain.cfg).
        results_dir: TAO's ``-r``; emptied first so a retried step starts clean.
        dataset_dir: Class-folder root from the prepare step (train/ and val/ are used).
        pretrained_model: Model to start from ("" = from scratch; the pruned model to retrain).
        num_gpus: TAO's ``--gpus``; equals the pod's GPU request.
        metrics: kfp ``Metrics`` artifact (optional).
        report_html: kfp ``HTML`` artifact (optional).
        title: Heading of the report.

    Returns:
        The checkpoint of the last epoch (``<arch>_<epoch>.tlt`` or ``.hdf5``) and scores.
    """
    from tao_kfp import parsers

    results = Path(results_dir)
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    dataset = Path(dataset_dir)
    final_spec = common.write_spec_with(
        spec_path,
        {
            "train_config.train_dataset_path": str(dataset / "train"),
            "train_config.val_dataset_path": str(dataset / "val"),
            "eval_config.eval_dataset_path": str(dataset / "test"),
            "train_config.pretrained_model_path": pretrained_model,
        },
        results / "spec.cfg",
    )
    output = run_tao(
        ["train", "--gpus", str(num_gpus), "-e", str(final_spec), "-r", str(results)] + key_args(),
        log_path=results / "tao.log",
    )
    summary = parsers.parse_train_output(output)
    arch = common.spec_arch(final_spec)
    checkpoint = common.find_latest_checkpoint(results, arch)
    result = TrainResult(
        model_path=str(checkpoint),
        classmap=str(results / "classmap.json"),
        arch=arch,
        val_accuracy=summary.val_accuracy,
        val_loss=summary.val_loss,
        epochs_completed=summary.epochs_completed,
    )
    csv_path = results / "training.csv"
    rows = parsers.read_training_csv(csv_path) if csv_path.is_file() else []
    last = rows[-1] if rows else {}
    common.log_metrics(
        metrics,
        {
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
            "train_accuracy": last.get("acc"),
            "train_loss": last.get("loss"),
            "epochs": result.epochs_completed,
            "model_size_mb": common.size_mb(checkpoint),
            "parameters": total_parameters(output),
        },
    )
    report.write_text(
        report_html,
        report.training_report_html(
            title,
            rows,
            {
                "checkpoint": checkpoint,
                "epochs completed": result.epochs_completed,
                "validation accuracy": result.val_accuracy,
                "validation loss": result.val_loss,
                "pretrained model": pretrained_model or "(none: from scratch)",
            },
        ),
    )
    print(f"checkpoint: {checkpoint}", flush=True)
    return result


def total_parameters(output: str) -> Optional[int]:
    """The last ``Total params: 7,334,274`` of the Keras model summary TAO prints, if any."""
    found = re.findall(r"^Total params:\s*([\d,]+)", output, flags=re.MULTILINE)
    return int(found[-1].replace(",", "")) if found else None


def publish_model(
    model_artifact, result: TrainResult, workspace_path: Optional[str] = None
) -> None:
    """Copies the final checkpoint into a kfp ``Model`` artifact and records its metadata."""
    target = Path(model_artifact.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(result.model_path, target)
    model_artifact.metadata.update(
        {
            "workspace_path": workspace_path or result.model_path,
            "classmap": result.classmap,
            "arch": result.arch,
            "accuracy": result.val_accuracy,
            "val_accuracy": result.val_accuracy,
            "val_loss": result.val_loss,
        }
    )
