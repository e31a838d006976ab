"""The PyTorch classification route of current TAO (6.x/7.x): commands, spec writer, output readers.

Everything here follows NVIDIA's own code, nvidia-tao-pytorch 7.3.0 and nvidia-tao-deploy 7.3.0
(docs/tao-pytorch-route.md cites the lines). Tests run it against those wheels on the CPU
(tests/nvidia). Not yet wired into the pipeline's DAG: see docs/tao-pytorch-route.md.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

# nvidia-tao 6.26.3 launcher, nvidia_tao_cli/config/config.json.
TRAINING_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-pyt"
DEPLOY_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy"
# Console scripts of both wheels (each wheel's entry_points.txt); same name, separate images.
ENTRYPOINT = "classification_pyt"
# cv/classification_pyt/scripts/*.py in each wheel.
TRAINING_ACTIONS = ("train", "evaluate", "inference", "export", "distill", "quantize")
DEPLOY_ACTIONS = ("gen_trt_engine", "evaluate", "inference")

PathLike = Union[str, os.PathLike]


def command(action: str, spec: PathLike, *overrides: str, deploy: bool = False) -> List[str]:
    """``classification_pyt <action> -e <spec> [key=value ...]`` (Hydra overrides after the spec).

    The spec path always carries a directory part: the entrypoint fails on a bare file name.
    """
    actions = DEPLOY_ACTIONS if deploy else TRAINING_ACTIONS
    if action not in actions:
        raise ValueError(f"{action!r} is not a classification_pyt action here: {actions}")
    spec_path = os.fspath(spec)
    if not os.path.dirname(spec_path):
        spec_path = os.path.join(".", spec_path)
    return [ENTRYPOINT, action, "-e", spec_path, *overrides]


def training_spec(
    *,
    results_dir: PathLike,
    dataset_dir: PathLike,
    num_classes: int,
    backbone: str = "efficientvit_b0",
    pretrained_backbone: Optional[PathLike] = None,
    img_size: int = 224,
    batch_size: int = 8,
    epochs: int = 1,
    workers: int = 0,
    learning_rate: Optional[float] = None,
    cpu: bool = False,
) -> Dict[str, Any]:
    """The Hydra spec (as a dict) for every training-image action of one run.

    ``dataset_dir`` holds train/, val/ and test/ with one folder per class. Each action reads
    its own section; the model paths of evaluate, inference, export and quantize point at
    train's ``classifier_model_latest.pth`` and are overridden per call where they differ.
    ``cpu`` (the CPU runs of tests/nvidia and make demo-tao) sets the two keys that select the
    device: ``export.on_cpu`` and ``quantize.device`` (default "cuda").
    """
    results = Path(results_dir)
    data = Path(dataset_dir)
    latest = str(results / "train" / "classifier_model_latest.pth")
    optim: Dict[str, Any] = {"policy": "step"}  # distill fails on the default policy
    if learning_rate is not None:
        optim["lr"] = learning_rate
    return {
        "results_dir": str(results),
        "wandb": {"enable": False},  # default true; pods have no internet
        "model": {
            "backbone": {
                "type": backbone,
                "pretrained_backbone_path": str(pretrained_backbone)
                if pretrained_backbone
                else None,
                "freeze_backbone": False,
            },
            "head": {"type": "TAOLinearClsHead", "topk": [1]},
        },
        "dataset": {
            "root_dir": str(data),
            "num_classes": num_classes,
            "img_size": img_size,
            "batch_size": batch_size,
            "workers": workers,
            "train_dataset": {"images_dir": str(data / "train")},
            "val_dataset": {"images_dir": str(data / "val")},
            "test_dataset": {"images_dir": str(data / "test")},
            "quant_calibration_dataset": {"images_dir": str(data / "train")},
        },
        "train": {
            "num_gpus": 1,
            "num_epochs": epochs,
            "checkpoint_interval": 1,
            "validation_interval": 1,
            "optim": optim,
        },
        "evaluate": {"checkpoint": latest},
        "inference": {"checkpoint": latest},
        "export": {
            "checkpoint": latest,
            "onnx_file": str(results / "export" / "model.onnx"),
            "on_cpu": cpu,
            "input_width": img_size,
            "input_height": img_size,
        },
        "quantize": {
            "model_path": latest,
            "results_dir": str(results / "quantize"),
            "backend": "torchao",
            "mode": "weight_only_ptq",
            "device": "cpu" if cpu else "cuda",
            "layers": [{"module_name": "Linear", "weights": {"dtype": "int8"}}],
        },
    }


def deploy_spec(
    *,
    results_dir: PathLike,
    onnx_file: PathLike,
    engine_file: PathLike,
    num_classes: int,
    img_size: int,
    data_type: str = "fp16",
    batch_size: int = 1,
) -> Dict[str, Any]:
    """The tao-deploy spec for ``gen_trt_engine`` (FP16; INT8 comes from a quantized QDQ ONNX)."""
    if data_type not in ("fp32", "fp16", "int8"):
        raise ValueError(f"gen_trt_engine.tensorrt.data_type: {data_type!r} (fp32, fp16, int8)")
    return {
        "results_dir": str(results_dir),
        "dataset": {"num_classes": num_classes, "img_size": img_size},
        "gen_trt_engine": {
            "onnx_file": str(onnx_file),
            "trt_engine": str(engine_file),
            "batch_size": batch_size,
            "tensorrt": {
                "data_type": data_type,
                "workspace_size": 1024,
                "min_batch_size": 1,
                "opt_batch_size": batch_size,
                "max_batch_size": batch_size,
            },
        },
    }


@dataclass(frozen=True)
class Status:
    """``<results_dir>/<action>/status.json``: one JSON object per line, as TAO writes it."""

    entries: List[Dict[str, Any]]

    @property
    def kpi(self) -> Dict[str, float]:
        """Every ``kpi`` figure, later lines overriding earlier ones."""
        merged: Dict[str, float] = {}
        for entry in self.entries:
            merged.update(entry.get("kpi") or {})
        return merged

    @property
    def failed(self) -> bool:
        """Whether any line has status FAILURE."""
        return any(entry.get("status") == "FAILURE" for entry in self.entries)

    @property
    def last_message(self) -> str:
        """The last line's message, e.g. "Evaluate finished successfully."."""
        return self.entries[-1].get("message", "") if self.entries else ""


def read_status(results_dir: PathLike, action: str) -> Status:
    """Reads the status file an action wrote (FileNotFoundError names it when there is none)."""
    path = Path(results_dir) / action / "status.json"
    lines = path.read_text(encoding="utf-8").splitlines()
    return Status([json.loads(line) for line in lines if line.strip()])


@dataclass(frozen=True)
class Prediction:
    """One row of result.csv; ``label`` is the ground truth (evaluate only)."""

    image: str
    predicted: str
    score: float
    label: Optional[str]


def read_results_csv(path: PathLike) -> List[Prediction]:
    """Reads evaluate's or inference's ``result.csv``.

    Columns: ``img_name``, per-class scores (evaluate only), ``pred_label``, ``pred_score``,
    ``gt_label`` (evaluate only).
    """
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            Prediction(
                row["img_name"], row["pred_label"], float(row["pred_score"]), row.get("gt_label")
            )
            for row in csv.DictReader(handle)
        ]


def accuracy(predictions: List[Prediction]) -> Optional[float]:
    """Top-1 accuracy of labelled predictions, None when none is labelled."""
    labelled = [p for p in predictions if p.label]
    if not labelled:
        return None
    return sum(p.predicted == p.label for p in labelled) / len(labelled)
