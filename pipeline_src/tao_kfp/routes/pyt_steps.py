"""The PyTorch route's step implementations: plain functions its KFP components call.

Each runs ``classification_pyt <action> -e <spec>`` through :func:`tao_kfp.tao.run_tao` (the
command from ``TAO_ENTRYPOINT`` or, in the tao-deploy image, ``TAO_DEPLOY_ENTRYPOINT``), then
reads what NVIDIA's code wrote (tao_kfp.routes.pyt: status.json, result.csv, checkpoints).
Step 1 wrote and checked every spec; a step only sets the paths its inputs really have.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from tao_kfp import dataset, parsers
from tao_kfp.routes import pyt
from tao_kfp.steps import common, report, validate
from tao_kfp.tao import run_tao

# Step name -> the classification_pyt action it runs.
ACTIONS = {
    "train": "train",
    "evaluate": "evaluate",
    "evaluate_compressed": "evaluate",
    "inference": "inference",
    "export": "export",
    "gen_trt_engine": "gen_trt_engine",
    "evaluate_engine": "evaluate",
}
# Set only by make demo-tao: tao-deploy runs with tao-env/deploy-stand-ins, whose tensorrt
# stops at the first TensorRT call. The engine steps then record where it stopped.
STAND_IN_ENV = "TAO_KFP_TENSORRT_STAND_IN"
STAND_IN_MARK = "TensorRTStandInReached"
# A traceback frame of NVIDIA's deploy code, and the source line under it.
_DEPLOY_FRAME = re.compile(r'File "[^"]*/(nvidia_tao_deploy/[^"]+)", line (\d+), in \w+\n\s*(.+)')


@dataclass
class RunPlan:
    """Paths decided by step 1; each becomes one of its outputs."""

    run_dir: str
    dataset_source: str
    dataset_dir: str
    specs_dir: str
    pretrained_source: str
    pretrained_cache: str


def _number_problems(
    epochs: int, compress_epochs: int, batch_size: int, learning_rate: float, num_gpus: str
) -> List[str]:
    errors = validate.check_numbers(
        epochs={"epochs": epochs, "compress_epochs": compress_epochs},
        batch_size=batch_size,
        learning_rate=learning_rate,
        num_gpus=num_gpus,
    )
    return errors


def _dataset(
    dataset_path: str, dataset_format: str, root: Path, run_dir: Path, batch_size: int
) -> tuple[Optional[Path], Path, List[str], List[str]]:
    """(source, class-folder dir, class names, problems) as the TF1 route checks them."""
    source = validate.resolve_in_workspace(dataset_path, root) if dataset_path.strip() else None
    dataset_dir = run_dir / "dataset"
    if dataset_format not in validate.DATASET_FORMATS:
        formats = ", ".join(validate.DATASET_FORMATS)
        return source, dataset_dir, [], [f"dataset_format must be one of {formats}."]
    if source is None:
        return None, dataset_dir, [], ["dataset_path is empty: give the dataset folder."]
    if not validate.is_inside(source, root):
        return source, dataset_dir, [], [f"dataset_path {dataset_path!r} is outside the workspace."]
    if not source.is_dir():
        return source, dataset_dir, [], [f"dataset_path {source} does not exist or is no folder."]
    if dataset_format == "class_folders":
        classes = dataset.class_folders(source / "train") if (source / "train").is_dir() else []
        return source, source, classes, validate.check_class_folders(source, batch_size)
    return (
        source,
        dataset_dir,
        sorted(dataset.voc_class_lists(source)),
        validate.check_voc(source, batch_size),
    )


def validate_inputs(
    *,
    workspace: str,
    run_id: str,
    tao_version: str,
    dataset_path: str,
    dataset_format: str,
    pretrained_model: str,
    epochs: int,
    compress_epochs: int,
    batch_size: int,
    learning_rate: float,
    compression: str,
    student_backbone: str,
    engine_precision: str,
    num_gpus: str,
    spec_overrides: str,
) -> RunPlan:
    """Checks the run's inputs, writes every spec of the run and checks them with NVIDIA's config.

    Raises:
        validate.InputError: Listing every problem found, each with its fix.
    """
    from tao_kfp import spec as spec_module  # the one parser of spec_overrides

    root = Path(workspace)
    if not root.is_dir():
        raise validate.InputError(f"workspace {root} is not mounted: check workspace.claimName.")
    if tao_version not in pyt.ROUTE.versions:
        raise validate.InputError(
            f"this is the {pyt.ROUTE.title} pipeline, but tao.version is {tao_version}: "
            "upload the package of tao.version's route (files/pipelines)."
        )
    errors = _number_problems(epochs, compress_epochs, batch_size, learning_rate, num_gpus)
    if compression not in pyt.COMPRESSIONS:
        errors.append(f"compression must be one of {', '.join(pyt.COMPRESSIONS)}.")
    problem = pyt.engine_problem(compression, engine_precision)
    if problem:
        errors.append(problem)
    if compression == "distill" and not student_backbone.strip():
        errors.append("student_backbone is empty: name the smaller backbone to distill into.")
    if not run_id or run_id.startswith("{{"):
        run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    run_dir = root / "experiments" / run_id
    errors += validate.launcher_problems(workspace=workspace, run_id=run_id)
    source, dataset_dir, classes, problems = _dataset(
        dataset_path, dataset_format, root, run_dir, batch_size
    )
    errors += problems
    pretrained_source, problems = validate.classify_pretrained(
        pretrained_model, root, extensions=(".pth", ".ckpt")
    )
    errors += problems
    overrides: Dict[str, Any] = {}
    try:
        overrides = spec_module.parse_overrides(spec_overrides, "spec_overrides")
    except spec_module.SpecError as error:
        errors.append(str(error))
    errors += pyt.reserved_override_problems(overrides)
    if errors:
        raise validate.InputError(validate._report(errors))

    teacher = overrides.get("model", {}).get("backbone", {}).get("type", pyt.DEFAULT_BACKBONE)
    if compression == "distill" and student_backbone == teacher:
        print(
            f"note: student_backbone {student_backbone} is the teacher's backbone: distill then "
            "retrains the same architecture; set a larger teacher with spec_overrides "
            '{"model": {"backbone": {"type": "efficientvit_b1"}}} to compress.',
            flush=True,
        )
    specs_dir = run_dir / "specs"
    specs_dir.mkdir(parents=True, exist_ok=True)
    specs = pyt.run_specs(
        run_dir=run_dir,
        dataset_dir=dataset_dir,
        num_classes=len(classes),
        epochs=epochs,
        compress_epochs=compress_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        compression=compression,
        student_backbone=student_backbone,
        engine_precision=engine_precision,
        overrides=overrides,
        cpu=os.environ.get(pyt.CPU_ENV) == "1",
    )
    files = {step: write_yaml(specs_dir / f"{step}.yaml", spec) for step, spec in specs.items()}
    problems = []
    for deploy in (False, True):
        mine = {s: f for s, f in files.items() if pyt.STEP_SPECS[s] == deploy}
        found = pyt.nvidia_config_problems(mine, deploy)
        if found is None:
            print(
                f"note: {pyt._PACKAGES[deploy]} is not importable here: its ExperimentConfig "
                "checks these specs when each step starts",
                flush=True,
            )
        else:
            problems += found
            print(f"{len(mine)} specs checked against {pyt._PACKAGES[deploy]}", flush=True)
    if problems:
        raise validate.InputError(validate._report(problems))

    plan = RunPlan(
        run_dir=str(run_dir),
        dataset_source=str(source) if dataset_format == "voc" else "",
        dataset_dir=str(dataset_dir),
        specs_dir=str(specs_dir),
        pretrained_source=pretrained_source,
        pretrained_cache=str(root / validate.PRETRAINED_CACHE),
    )
    record = {
        "run_id": run_id,
        "route": pyt.ROUTE.name,
        "parameters": {
            "dataset_path": dataset_path,
            "dataset_format": dataset_format,
            "pretrained_model": pretrained_model,
            "epochs": epochs,
            "compress_epochs": compress_epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "compression": compression,
            "student_backbone": student_backbone,
            "engine_precision": engine_precision,
            "num_gpus": num_gpus,
            "spec_overrides": spec_overrides,
        },
        "classes": classes,
        "plan": asdict(plan),
    }
    (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2), flush=True)
    return plan


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    """Writes a spec as YAML (creating its folder) and returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


def _set(spec: Dict[str, Any], dotted: str, value: Any) -> None:
    *parents, name = dotted.split(".")
    for parent in parents:
        spec = spec.setdefault(parent, {})
    spec[name] = value


def step_spec(specs_dir: str, step: str, updates: Optional[Mapping[str, Any]] = None) -> Path:
    """Step 1's spec of ``step`` with ``updates`` ({dotted key: value}) written beside its results.

    The results folder is the spec's own ``results_dir``; it is emptied first, so a retried
    step starts clean (and train does not resume from a failed attempt's checkpoint).
    """
    import shutil

    spec = yaml.safe_load((Path(specs_dir) / f"{step}.yaml").read_text(encoding="utf-8"))
    for key, value in (updates or {}).items():
        _set(spec, key, value)
    results = Path(spec["results_dir"])
    shutil.rmtree(results, ignore_errors=True)
    return write_yaml(results / "spec.yaml", spec)


def run_action(step: str, spec_path: Path, deploy: bool = False) -> str:
    """Runs the step's classification_pyt action on its spec; returns the output."""
    command_env = "TAO_DEPLOY_ENTRYPOINT" if deploy else "TAO_ENTRYPOINT"
    return run_tao(
        pyt.arguments(ACTIONS.get(step, step), spec_path, deploy=deploy),
        command_env=command_env,
        log_path=spec_path.parent / "tao.log",
    )


def _results(spec_path: Path) -> Path:
    return spec_path.parent


def gpu_updates(num_gpus: str) -> Dict[str, Any]:
    """The spec keys NVIDIA's launcher reads the GPUs of train and distill from.

    ``train.num_gpus`` and ``train.gpu_ids`` (nvidia-tao-pytorch core/entrypoint.py:329-348;
    distill reads the train section too), so the processes match the pod's GPU limit.
    """
    count = int(num_gpus)
    return {"train.num_gpus": count, "train.gpu_ids": list(range(count))}


def run_train(*, specs_dir: str, pretrained_model: str, num_gpus: str, metrics=None) -> str:
    """Trains; logs the final KPIs and the checkpoint's size; returns the checkpoint."""
    updates = gpu_updates(num_gpus)
    if pretrained_model:
        updates["model.backbone.pretrained_backbone_path"] = pretrained_model
    spec = step_spec(specs_dir, "train", updates)
    run_action("train", spec)
    checkpoint = pyt.trained_checkpoint(_results(spec), "train")
    kpi = pyt.read_status(_results(spec), "train").kpi
    common.log_metrics(
        metrics,
        {
            **{k: v for k, v in kpi.items() if isinstance(v, (int, float))},
            "model_size_mb": common.size_mb(checkpoint),
        },
    )
    print(f"checkpoint: {checkpoint}", flush=True)
    return str(checkpoint)


def evaluation(
    predictions: List[pyt.Prediction], metrics=None, confusion_matrix=None, extra=None
) -> Optional[float]:
    """Logs top-1, per-class figures and the confusion matrix of labelled predictions."""
    names = sorted({p.label for p in predictions if p.label} | {p.predicted for p in predictions})
    labelled = [p for p in predictions if p.label]
    matrix = parsers.confusion_from_labels(
        [p.label for p in labelled], [p.predicted for p in labelled], names
    )
    top1 = parsers.top1_accuracy(matrix)
    values: Dict[str, Optional[float]] = {"top1_accuracy": top1, **(extra or {})}
    for name, scores in parsers.class_scores(matrix, names).items():
        values[f"{name}_precision"] = scores.precision
        values[f"{name}_recall"] = scores.recall
        values[f"{name}_f1"] = scores.f1
    common.log_metrics(metrics, values)
    if confusion_matrix is not None:
        confusion_matrix.log_confusion_matrix(names, matrix)
    print(f"top-1 accuracy {top1} ({len(labelled)} images, {len(names)} classes)", flush=True)
    return top1


def run_evaluate(
    *, specs_dir: str, step: str, model_path: str, metrics=None, confusion_matrix=None
) -> Optional[float]:
    """Evaluates ``model_path`` (evaluate or evaluate_compressed); logs metrics and the matrix."""
    spec = step_spec(specs_dir, step, {"evaluate.checkpoint": model_path})
    run_action(step, spec)
    results = _results(spec)
    predictions = pyt.read_results_csv(results / "evaluate" / "result.csv")
    kpi = pyt.read_status(results, "evaluate").kpi
    return evaluation(predictions, metrics, confusion_matrix, {"val_acc_1": kpi.get("val_acc_1")})


# NVIDIA's distiller saves its loss module too, which holds the student and the teacher
# (nvidia-tao-pytorch cv/classification_pyt/distillation/distiller.py:222-233, DistillationLoss
# gets student_model and teacher_model; on_save_checkpoint, :475-482, drops only "teacher*"
# keys), and evaluate, inference and export load checkpoints strictly
# (ClassifierPlModel.load_from_checkpoint): "Unexpected key(s) in state_dict:
# distillation_loss_fn.student_model...". The student is the "model." keys: keep only those.
_STUDENT_SCRIPT = """
import sys, torch
checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
state = checkpoint["state_dict"]
dropped = [key for key in state if not key.startswith("model.")]
for key in dropped:
    state.pop(key)
for training_state in ("optimizer_states", "lr_schedulers"):  # the student is for use now
    checkpoint.pop(training_state, None)
torch.save(checkpoint, sys.argv[2])
print(f"student checkpoint {sys.argv[2]}: {len(state)} tensors kept, {len(dropped)} dropped")
"""


def tao_python() -> List[str]:
    """TAO's own Python, as a command: the interpreter of its ``classification_pyt`` script.

    The training image's command (``TAO_ENTRYPOINT``) is a console script whose first line
    names the Python that has torch; words before it (an ``env ...`` prefix) are kept.
    """
    import shlex
    import shutil

    from tao_kfp.tao import SYSTEM_PATH_ENV, command_prefix

    words = command_prefix("TAO_ENTRYPOINT")
    search = next((w[len("PATH=") :] for w in words if w.startswith("PATH=")), None)
    search = search or os.environ.get(SYSTEM_PATH_ENV) or os.environ.get("PATH")
    script = shutil.which(words[-1], path=search)
    if script is None:
        raise FileNotFoundError(f"{words[-1]} (tao.entrypoint) is not on PATH ({search})")
    with open(script, "rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    if not first.startswith("#!"):
        raise ValueError(f"{script} is not a Python console script (first line {first!r})")
    return words[:-1] + shlex.split(first[2:])


def student_checkpoint(distilled: Path) -> Path:
    """A checkpoint of the student alone, which evaluate, inference and export can load."""
    import subprocess

    student = distilled.with_name("student.pth")
    command = tao_python() + ["-c", _STUDENT_SCRIPT, str(distilled), str(student)]
    process = subprocess.run(command, capture_output=True, text=True)
    print(process.stdout + process.stderr, flush=True)
    if process.returncode != 0 or not student.is_file():
        raise RuntimeError(f"could not write the student checkpoint {student}; see above.")
    return student


def run_compress(
    *, specs_dir: str, compression: str, model_path: str, num_gpus: str, metrics=None
) -> str:
    """Distills into the student or quantizes the trained model; returns the compressed model."""
    if compression == "distill":
        updates = {"distill.pretrained_teacher_model_path": model_path, **gpu_updates(num_gpus)}
    else:
        updates = {"quantize.model_path": model_path}
    spec = step_spec(specs_dir, "compress", updates)
    run_tao(pyt.arguments(compression, spec), log_path=spec.parent / "tao.log")
    if compression == "distill":
        compressed = student_checkpoint(pyt.trained_checkpoint(_results(spec), "distill"))
    else:
        quantize = yaml.safe_load(spec.read_text())["quantize"]
        compressed = Path(quantize["results_dir"]) / "quantized_model_torchao.pth"
        if not compressed.is_file():
            raise FileNotFoundError(f"quantize wrote no {compressed}; see its log above.")
    original, size = common.size_mb(model_path), common.size_mb(compressed)
    common.log_metrics(
        metrics,
        {
            "original_size_mb": original,
            "model_size_mb": size,
            "size_ratio": size / original if original else None,
        },
    )
    print(f"{compression}: {model_path} ({original} MB) -> {compressed} ({size} MB)", flush=True)
    return str(compressed)


def run_inference(*, specs_dir: str, model_path: str, table=None, predictions=None) -> int:
    """Classifies the test split with the compressed model; writes a table and result.csv."""
    import shutil

    spec = step_spec(specs_dir, "inference", {"inference.checkpoint": model_path})
    run_action("inference", spec)
    csv_path = _results(spec) / "inference" / "result.csv"
    rows = pyt.read_results_csv(csv_path)
    shown = rows[:200]
    text = (
        f"# Inference on the test split\n\n{len(rows)} images predicted.\n\n"
        + report.markdown_table(
            ["image", "predicted", "score"],
            [[Path(r.image).name, r.predicted, f"{r.score:.3f}"] for r in shown],
        )
    )
    report.write_text(table, text)
    if predictions is not None:
        Path(predictions.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(csv_path, predictions.path)
        predictions.metadata.update({"workspace_path": str(csv_path), "rows": len(rows)})
    return len(rows)


def run_export(*, specs_dir: str, model_path: str, metrics=None) -> str:
    """Exports the ONNX model the engine is built from; logs its size."""
    spec = step_spec(specs_dir, "export", {})
    onnx_file = Path(yaml.safe_load(spec.read_text())["export"]["onnx_file"])
    run_action("export", spec)
    if not onnx_file.is_file():
        raise FileNotFoundError(f"export wrote no {onnx_file}; see its log above.")
    common.log_metrics(
        metrics,
        {"model_size_mb": common.size_mb(model_path), "export_size_mb": common.size_mb(onnx_file)},
    )
    return str(onnx_file)


def stand_in_stop(log: str) -> Optional[str]:
    """Where tao-deploy stopped when the TensorRT stand-in stopped it (make demo-tao only).

    The last frame of NVIDIA's deploy code in the traceback, e.g. ``nvidia_tao_deploy/engine/
    builder.py:100 trt.init_libnvinfer_plugins(self.trt_logger, namespace="")``; None when
    the stand-ins are not in use or something else failed.
    """
    if os.environ.get(STAND_IN_ENV) != "1" or STAND_IN_MARK not in log:
        return None
    frames = _DEPLOY_FRAME.findall(log[: log.rindex(STAND_IN_MARK)])
    if not frames:
        return "the first TensorRT call (no frame of nvidia_tao_deploy in the log)"
    path, line, code = frames[-1]
    return f"{path}:{line} {code.strip()}"


def run_gen_trt_engine(*, specs_dir: str, onnx_model: str, metrics=None) -> str:
    """Builds the TensorRT engine in tao-deploy; returns it ("" where the stand-in stopped)."""
    from tao_kfp.tao import TaoCommandError

    spec = step_spec(specs_dir, "gen_trt_engine", {"gen_trt_engine.onnx_file": onnx_model})
    engine = Path(yaml.safe_load(spec.read_text())["gen_trt_engine"]["trt_engine"])
    try:
        run_action("gen_trt_engine", spec, deploy=True)
    except TaoCommandError:
        stop = stand_in_stop((spec.parent / "tao.log").read_text(errors="replace"))
        if stop is None:
            raise
        print(f"tao-deploy ran up to its first TensorRT call, {stop}: no engine", flush=True)
        (spec.parent / "stopped_at.txt").write_text(stop + "\n")
        if metrics is not None:
            metrics.metadata["stopped_at"] = stop
        return ""
    if not engine.is_file():
        raise FileNotFoundError(f"gen_trt_engine wrote no {engine}; see its log above.")
    common.log_metrics(metrics, {"engine_size_mb": common.size_mb(engine)})
    return str(engine)


def run_evaluate_engine(*, specs_dir: str, engine: str, metrics=None) -> Optional[float]:
    """Evaluates the engine in tao-deploy: its top-1 accuracy from results.json."""
    if not engine:
        print("no engine (tao-deploy stopped at the TensorRT stand-in): skipped", flush=True)
        if metrics is not None:
            metrics.metadata["skipped"] = "no engine: the TensorRT stand-in stopped gen_trt_engine"
        return None
    spec = step_spec(specs_dir, "evaluate_engine", {"evaluate.trt_engine": engine})
    run_action("evaluate_engine", spec, deploy=True)
    # tao-deploy's evaluate writes results.json {"top_k_accuracy": ...} in results_dir
    # (nvidia-tao-deploy 7.3.0 cv/classification_pyt/scripts/evaluate.py:103-106).
    found = sorted(_results(spec).rglob("results.json"))
    if not found:
        raise FileNotFoundError(f"evaluate wrote no results.json in {_results(spec)}; see above.")
    scores = json.loads(found[0].read_text())
    accuracy = float(scores["top_k_accuracy"])
    common.log_metrics(metrics, {"top1_accuracy": accuracy})
    return accuracy
