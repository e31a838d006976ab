"""The PyTorch classification route of current TAO (6.x): commands, spec writer, output readers.

``tao.version`` 6: NVIDIA's ``tao-toolkit:6.26.3-pyt`` and ``-deploy`` images, whose code is on
PyPI as nvidia-tao-pytorch 7.3.0 and nvidia-tao-deploy 7.3.0. Everything here follows that code
(docs/tao-pytorch-route.md cites the lines), and tests run it against those wheels on the CPU
(tests/nvidia). The step implementations are in :mod:`tao_kfp.routes.pyt_steps`, the KFP
components and DAG in :mod:`tao_kfp.routes.pyt_dag`.

DAG (longest chain 7): validate -> prepare -> train -> compress -> export-onnx ->
gen-trt-engine -> evaluate-engine; download beside prepare; evaluate beside compress;
evaluate-compressed and inference beside the export. ``compress`` is ``distill`` into a smaller
student or ``quantize``, chosen per run (the counterpart of the TF1 route's prune + retrain).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from tao_kfp.routes import Commands, ReportKeys, Route

# nvidia-tao 6.26.3 launcher, nvidia_tao_cli/config/config.json.
TRAINING_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-pyt"
DEPLOY_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy"
# Console scripts of both wheels (each wheel's entry_points.txt); same name, separate images.
ENTRYPOINT = "classification_pyt"
# cv/classification_pyt/scripts/*.py in each wheel.
TRAINING_ACTIONS = ("train", "evaluate", "inference", "export", "distill", "quantize")
DEPLOY_ACTIONS = ("gen_trt_engine", "evaluate", "inference")

PathLike = Union[str, os.PathLike]
PIPELINE_NAME = "tao-classification-pyt"
# What compresses the trained model, chosen per run (the compression run parameter).
COMPRESSIONS = ("distill", "quantize")
# gen_trt_engine.tensorrt.data_type values of the engine run parameter (see engine_problem).
ENGINE_PRECISIONS = ("fp16", "fp32", "int8")
# Set by make demo-tao (and tests/nvidia) with the CPU shim: the spec then selects the CPU
# where a key does (export.on_cpu, quantize.device). tao-env/cpu-shim reads the same variable.
CPU_ENV = "TAO_KFP_CPU_SHIM"
DEFAULT_BACKBONE = "efficientvit_b0"

# Task name (as compiled) -> step kind, as in the TF1 route: GPU steps request a GPU.
STEP_KINDS: Dict[str, str] = {
    "validate-inputs": "cpu",
    "prepare-dataset": "cpu",
    "download-pretrained": "cpu",
    "train": "gpu",
    "evaluate": "gpu",
    "compress": "gpu",
    "evaluate-compressed": "gpu",
    "inference": "gpu",
    "export-onnx": "gpu",
    "gen-trt-engine": "gpu",
    "evaluate-engine": "gpu",
}
DEPLOY_TASKS = ("gen-trt-engine", "evaluate-engine")

ROUTE = Route(
    name="pyt",
    title="TAO 6.x PyTorch classification (classification_pyt)",
    versions={
        "6": Commands(entrypoint=ENTRYPOINT, deploy_entrypoint=ENTRYPOINT, deploy_image=True),
    },
    pipeline_name=PIPELINE_NAME,
    package="pipelines/tao-classification-pyt.yaml",
    step_kinds=STEP_KINDS,
    deploy_tasks=DEPLOY_TASKS,
    final_model_task="compress",
    report=ReportKeys(
        accuracy_before="evaluate",
        accuracy_after="evaluate-compressed",
        compression="compress",
        parameters_after="compress",
        sizes={
            "trained_model": ("train", "model_size_mb"),
            "compressed_model": ("compress", "model_size_mb"),
            "exported_onnx": ("export-onnx", "export_size_mb"),
            "engine": ("gen-trt-engine", "engine_size_mb"),
        },
        label="compression",
    ),
    dag="tao_kfp.routes.pyt_dag:pipeline",
)


def arguments(action: str, spec: PathLike, *overrides: str, deploy: bool = False) -> List[str]:
    """``<action> -e <spec> [key=value ...]``: what follows the command (Hydra overrides last).

    The spec path always carries a directory part: the entrypoint fails on a bare file name.
    """
    actions = DEPLOY_ACTIONS if deploy else TRAINING_ACTIONS
    if action not in actions:
        raise ValueError(f"{action!r} is not a classification_pyt action here: {actions}")
    spec_path = os.fspath(spec)
    if not os.path.dirname(spec_path):
        spec_path = os.path.join(".", spec_path)
    return [action, "-e", spec_path, *overrides]


def command(action: str, spec: PathLike, *overrides: str, deploy: bool = False) -> List[str]:
    """``classification_pyt <action> -e <spec> [key=value ...]`` (see :func:`arguments`)."""
    return [ENTRYPOINT, *arguments(action, spec, *overrides, deploy=deploy)]


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


# ---------------------------------------------------------------------------------------------
# The specs of one run: step 1 writes them all, NVIDIA's config checks them all.
# ---------------------------------------------------------------------------------------------

# Where each step's spec is written in the run's specs folder, and whether tao-deploy reads it.
STEP_SPECS: Dict[str, bool] = {
    "train": False,
    "evaluate": False,
    "compress": False,
    "evaluate_compressed": False,
    "inference": False,
    "export": False,
    "gen_trt_engine": True,
    "evaluate_engine": True,
}
# Spec keys the run form or the pipeline owns: set in spec_overrides they would be overwritten.
RESERVED_OVERRIDES = {
    "results_dir": "(set by the pipeline: one folder per step)",
    "dataset.root_dir": "dataset_path",
    "dataset.num_classes": "(the dataset's class folders)",
    "dataset.batch_size": "batch_size",
    "dataset.train_dataset": "dataset_path",
    "dataset.val_dataset": "dataset_path",
    "dataset.test_dataset": "dataset_path",
    "train.num_epochs": "epochs / compress_epochs",
    "train.optim.lr": "learning_rate",
    "model.backbone.pretrained_backbone_path": "pretrained_model",
    "evaluate": "(set by the pipeline)",
    "inference": "(set by the pipeline)",
    "export": "(set by the pipeline)",
    "distill": "compression / student_backbone",
    "quantize.model_path": "(set by the pipeline)",
    "gen_trt_engine": "engine_precision",
}


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """``extra`` laid over ``base`` key by key (a nested mapping keeps its siblings)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dotted_keys(data: Mapping[str, Any], prefix: str = "") -> List[str]:
    """Every key of a nested mapping as a dotted path, parents included."""
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, Mapping):
            keys.extend(dotted_keys(value, dotted + "."))
    return keys


def reserved_override_problems(overrides: Mapping[str, Any]) -> List[str]:
    """One problem per spec_overrides key that a run parameter or the pipeline owns."""
    problems = []
    for key in dotted_keys(overrides):
        for reserved, owner in RESERVED_OVERRIDES.items():
            if key == reserved or key.startswith(reserved + "."):
                problems.append(f"spec_overrides sets {key}; it is set from {owner}.")
    return problems


def trained_checkpoint(results_dir: PathLike, action: str) -> Path:
    """The checkpoint an action (train, distill) saved last under ``<results_dir>/<action>``.

    TAO writes ``<model>_latest.pth`` beside ``model_epoch_XXX.pth``; the latest is taken.
    """
    folder = Path(results_dir) / action
    latest = sorted(folder.glob("*latest*.pth"))
    epochs = sorted(folder.glob("*epoch_*.pth"))
    found = latest or epochs
    if not found:
        listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else "missing"
        raise FileNotFoundError(
            f"{action} wrote no checkpoint in {folder} (contents: {listing}); see its log above."
        )
    return found[-1]


def run_specs(
    *,
    run_dir: PathLike,
    dataset_dir: PathLike,
    num_classes: int,
    epochs: int,
    compress_epochs: int,
    batch_size: int,
    learning_rate: float,
    compression: str,
    student_backbone: str,
    engine_precision: str,
    overrides: Mapping[str, Any],
    cpu: bool = False,
) -> Dict[str, Dict[str, Any]]:
    """Every spec of one run, by step (``STEP_SPECS``), before a model exists.

    Model paths are the ones the steps will write; a step that learns its input's real path
    from the step before it (the pretrained backbone, a checkpoint) sets only that key again.
    ``overrides`` (spec_overrides) are laid over every training-image spec.
    """
    run = Path(run_dir)
    img_size = int(overrides.get("dataset", {}).get("img_size", 224))

    def training(step: str, epochs_here: int) -> Dict[str, Any]:
        spec = training_spec(
            results_dir=run / step,
            dataset_dir=dataset_dir,
            num_classes=num_classes,
            backbone=DEFAULT_BACKBONE,
            img_size=img_size,
            batch_size=batch_size,
            epochs=epochs_here,
            learning_rate=learning_rate,
            cpu=cpu,
        )
        return deep_merge(spec, overrides)

    trained = str(run / "train" / "train" / "classifier_model_latest.pth")
    # NVIDIA's evaluate reads dataset.val_dataset (its "test" stage: nvidia-tao-pytorch
    # cv/classification_pyt/dataloader/pl_classification_data_module.py:77-85); the
    # evaluations score the test split, as the TF1 route's and tao-deploy's evaluate do.
    on_test = {"dataset": {"val_dataset": {"images_dir": str(Path(dataset_dir) / "test")}}}
    specs: Dict[str, Dict[str, Any]] = {"train": training("train", epochs)}
    specs["evaluate"] = deep_merge(
        training("evaluate", epochs), {"evaluate": {"checkpoint": trained}, **on_test}
    )
    compress = training("compress", compress_epochs)
    if compression == "distill":
        teacher = specs["train"]["model"]
        compress["model"] = deep_merge(
            teacher, {"backbone": {"type": student_backbone, "pretrained_backbone_path": None}}
        )
        compress["distill"] = {
            "teacher": teacher,
            "pretrained_teacher_model_path": trained,
            "loss_type": "KL",  # logits distillation: any student architecture
        }
        compressed = str(run / "compress" / "distill" / "student.pth")  # pyt_steps.run_compress
        quantized = False
    else:
        compress["quantize"] = {**compress["quantize"], "model_path": trained}
        compress["quantize"]["results_dir"] = str(run / "compress" / "quantize")
        compressed = str(run / "compress" / "quantize" / "quantized_model_torchao.pth")
        quantized = True
    specs["compress"] = compress
    model = compress["model"]
    for step in ("evaluate_compressed", "inference"):
        action = "inference" if step == "inference" else "evaluate"
        spec = training(step, epochs)
        spec["model"] = model
        spec[action] = {"checkpoint": compressed, "is_quantized": quantized}
        specs[step] = deep_merge(spec, on_test) if action == "evaluate" else spec
    # A torchao-quantized model exported to ONNX carries dequantized weights (no int8 data:
    # docs/tao-pytorch-route.md), so quantize's run exports the trained model it quantized.
    exported_model = compressed if compression == "distill" else trained
    export = training("export", epochs)
    export["model"] = model if compression == "distill" else specs["train"]["model"]
    export["export"] = {**export["export"], "checkpoint": exported_model}
    specs["export"] = export
    onnx = str(run / "export" / "export" / "model.onnx")
    specs["export"]["export"]["onnx_file"] = onnx
    engine = str(run / "gen_trt_engine" / "model.engine")
    specs["gen_trt_engine"] = deploy_spec(
        results_dir=run / "gen_trt_engine",
        onnx_file=onnx,
        engine_file=engine,
        num_classes=num_classes,
        img_size=img_size,
        data_type=engine_precision,
        batch_size=batch_size,
    )
    data = Path(dataset_dir)
    specs["evaluate_engine"] = {
        "results_dir": str(run / "evaluate_engine"),
        "model": {"head": {"topk": [1]}},
        "dataset": {
            "root_dir": str(data),
            "num_classes": num_classes,
            "img_size": img_size,
            "batch_size": batch_size,
            "test_dataset": {"images_dir": str(data / "test")},
        },
        "evaluate": {"trt_engine": engine},
    }
    return specs


def engine_problem(compression: str, engine_precision: str) -> Optional[str]:
    """Why this engine precision cannot be built from this run's ONNX (None when it can).

    tao-deploy does not calibrate classification_pyt (``cv/common/initialize_experiments.py:60``
    lists it among the networks without INT8 calibration): an INT8 engine comes only from a QDQ
    ONNX, which quantize's ``modelopt.onnx`` backend writes. That backend needs a GPU and was
    not run here, so this route builds fp16 or fp32 engines only.
    """
    if engine_precision not in ENGINE_PRECISIONS:
        choices = ", ".join(ENGINE_PRECISIONS)
        return f"engine_precision must be one of {choices} (got {engine_precision!r})."
    if engine_precision == "int8":
        return (
            "engine_precision int8 needs a QDQ ONNX from quantize's modelopt.onnx backend "
            "(tao-deploy does not calibrate classification_pyt); this route exports fp32 ONNX "
            "and builds fp16 or fp32 engines: use fp16."
        )
    return None


# The check NVIDIA's hydra_runner makes before an action runs: the YAML merged into the
# structured ExperimentConfig (nvidia_tao_pytorch and nvidia_tao_deploy
# config/classification_pyt/default_config.py), which refuses an unknown key or a wrong type.
_CHECK_SCRIPT = """
import json, sys
from omegaconf import OmegaConf
from {package}.config.classification_pyt.default_config import ExperimentConfig
for path in sys.argv[1:]:
    try:
        OmegaConf.merge(OmegaConf.structured(ExperimentConfig), OmegaConf.load(path))
    except Exception as error:
        key = getattr(error, "full_key", None)
        print(json.dumps({{"path": path, "key": key, "error": str(error).splitlines()[0]}}))
"""
# Python interpreters that import NVIDIA's wheels, when this one does not (make demo-tao sets
# them to the envs of make tao-env): training image's, deploy image's.
NVIDIA_PYTHON_ENV = {False: "TAO_KFP_NVIDIA_PYTHON", True: "TAO_KFP_NVIDIA_DEPLOY_PYTHON"}
_PACKAGES = {False: "nvidia_tao_pytorch", True: "nvidia_tao_deploy"}


def nvidia_python(deploy: bool) -> Optional[str]:
    """An interpreter that imports the wheel of the training (or deploy) image, if one is here."""
    import importlib.util
    import sys

    if importlib.util.find_spec(_PACKAGES[deploy]) is not None:
        return sys.executable
    return os.environ.get(NVIDIA_PYTHON_ENV[deploy]) or None


def nvidia_config_problems(files: Mapping[str, Path], deploy: bool) -> Optional[List[str]]:
    """What NVIDIA's own ExperimentConfig refuses in ``files`` ({step: spec}); None: not checked.

    Each problem names the step, the key and NVIDIA's message, e.g. ``train spec: key
    train.num_epoch: Key 'num_epoch' not in 'TrainExpConfig'``.
    """
    import subprocess

    python = nvidia_python(deploy)
    if python is None or not files:
        return None
    script = _CHECK_SCRIPT.format(package=_PACKAGES[deploy])
    steps = {str(path): step for step, path in files.items()}
    process = subprocess.run(
        [python, "-c", script, *steps],
        capture_output=True,
        text=True,
        env={**os.environ, "TELEMETRY_OPT_OUT": "yes"},
    )
    if process.returncode != 0:
        return [f"NVIDIA's config check could not run ({python}): {process.stderr.strip()[-500:]}"]
    problems = []
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            found = json.loads(line)
            where = f"key {found['key']}: " if found["key"] else ""
            problems.append(
                f"{steps[found['path']]} spec {found['path']}: {where}{found['error']} "
                "(NVIDIA's ExperimentConfig; fix spec_overrides)"
            )
    return problems
