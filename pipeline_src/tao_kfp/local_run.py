"""Runs the shipped pipeline end to end on this machine, with the CPU backend standing in for TAO.

The compiled package in ``files/pipelines`` is adapted for a local environment through the same
``tao_kfp.package.adapt_package`` the chart's upload Job uses (workspace = a local folder, TAO
commands = the CPU backend), then executed with ``kfp.local``'s SubprocessRunner. Nothing here is
a second pipeline definition: what runs is what a cluster runs, minus the Kubernetes plumbing that
``kfp.local`` ignores.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shlex
import stat
import sys
import time
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence

from tao_kfp.local_summary import (  # noqa: F401 (LocalRunSummary and format_summary: API)
    LocalRunSummary,
    backend_seconds,
    format_summary,
    summarise,
    task_outputs,
)
from tao_kfp.routes import VERSIONS
from tao_kfp.routes.pyt import deep_merge  # the one nested-mapping merge (spec overrides)

# Sized so the whole demo runs in a few minutes on 2 CPU cores (digits at 32x32, ResNet-10).
DEMO_SPEC_OVERRIDES: Dict[str, Any] = {
    "model_config": {
        "arch": "resnet",
        "n_layers": 10,
        "input_image_size": "3,32,32",
        "freeze_blocks": [],
        "use_batch_norm": True,
        "all_projections": True,
    },
    "train_config": {
        "n_workers": 2,
        "enable_random_crop": False,
        "enable_center_crop": False,
        "disable_horizontal_flip": True,  # flipped digits are other digits
        "mixup_alpha": 0.0,
        "preprocess_mode": "torch",
        "lr_config": {"step": {"step_size": 70, "gamma": 0.1}},
    },
    # eval_config.enable_center_crop follows the train_config crops (run_spec_overrides).
    "eval_config": {"n_workers": 2, "batch_size": 128, "top_k": 3},
}
DEMO_PARAMETERS: Dict[str, Any] = {
    "dataset_format": "class_folders",
    "pretrained_model": "",  # no network: train from scratch
    "epochs": 12,
    "retrain_epochs": 10,
    "batch_size": 64,
    "learning_rate": 0.05,
    "prune_threshold": 0.6,
    "num_gpus": "1",
}

KEEP_CHOICES = ("last-best", "all")
# The chart's default ngc.modelKey, used by local runs when TAO_MODEL_KEY is unset.
LOCAL_MODEL_KEY = "nvidia_tlt"
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class StepTiming:
    """Wall time and status of one pipeline task as kfp.local reported it."""

    task: str
    status: str = "RUNNING"
    seconds: Optional[float] = None
    started: float = 0.0


class _TaskProgress(logging.Filter):
    """Watches kfp.local's task log lines to time each step and print a progress line.

    kfp.local swaps the root logger's handlers during a run but not its filters, so a filter
    on the root logger sees every line it logs.
    """

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.timings: Dict[str, StepTiming] = {}
        # kfp.local runs one task at a time (kfp/local/orchestrator/dag_orchestrator.py: a
        # loop over the topologically sorted tasks), so output belongs to the task started last.
        self.current: Optional[str] = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        started = _TASK_START.search(message)
        if started:
            name = started.group(1)
            self.timings[name] = StepTiming(task=name, started=time.monotonic())
            self.current = name
            _progress(f"[{len(self.timings)}/{self.total}] {name} ...")
        ended = _TASK_END.search(message)
        if ended and ended.group(1) in self.timings:
            timing = self.timings[ended.group(1)]
            self.current = None  # what kfp.local logs from here on is not the task's output
            timing.status = ended.group(2)
            timing.seconds = round(time.monotonic() - timing.started, 1)
            _progress(
                f"[{len(self.timings)}/{self.total}] {timing.task}: {timing.status} "
                f"in {timing.seconds:.1f} s"
            )
        return True


def _progress(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


def local_environment(workspace: Path, tao_version: str = "3", nvidia: Optional[NvidiaEnvs] = None):
    """The EnvironmentConfig of a laptop run: a local workspace and the CPU backend.

    ``tao_version`` picks the route the backend plays: 3 (classification + converter) or
    5 (classification_tf1 + tao-deploy's gen_trt_engine). Version 6 runs NVIDIA's own code
    instead, from the envs of ``make tao-env`` (``nvidia``).
    """
    from tao_kfp.environment import EnvironmentConfig

    if nvidia is not None:
        tao = {
            "entrypoint": nvidia.command(deploy=False),
            "deployEntrypoint": nvidia.command(deploy=True),
            "version": tao_version,
        }
    else:
        backend = (
            f"{shlex.quote(sys.executable)} -m tao_kfp.cpu_backend --tao-version {tao_version}"
        )
        tao = {
            "entrypoint": backend,
            "converter": f"{backend} converter",
            "deployEntrypoint": backend,
            "version": tao_version,
        }
    return EnvironmentConfig.model_validate(
        {"workspace": {"mountPath": str(workspace)}, "tao": tao}
    )


# The repo's helpers for NVIDIA's code on a CPU: tao-env/cpu-shim, tao-env/deploy-stand-ins.
TAO_ENV_HELPERS = Path(__file__).resolve().parents[2] / "tao-env"
# Where make demo-tao says the envs of make tao-env are (hack/tao-env.sh prints them).
PYT_ENV_VARIABLE = "TAO_PYT_ENV"
DEPLOY_ENV_VARIABLE = "TAO_DEPLOY_ENV"


@dataclass(frozen=True)
class NvidiaEnvs:
    """The Python 3.12 envs holding NVIDIA's nvidia-tao-pytorch and nvidia-tao-deploy."""

    pyt: Path
    deploy: Path

    @classmethod
    def from_environment(cls) -> NvidiaEnvs:
        """The envs named by $TAO_PYT_ENV and $TAO_DEPLOY_ENV (LocalRunError when unset)."""
        found = {name: os.environ.get(name, "") for name in (PYT_ENV_VARIABLE, DEPLOY_ENV_VARIABLE)}
        missing = [name for name, value in found.items() if not value or not Path(value).is_dir()]
        if missing:
            raise LocalRunError(
                f"tao.version 6 runs NVIDIA's TAO code from the envs of `make tao-env`: set "
                f"{' and '.join(missing)} (make demo-tao does)."
            )
        if not TAO_ENV_HELPERS.is_dir():
            raise LocalRunError(f"{TAO_ENV_HELPERS} is missing: run from a source checkout.")
        return cls(Path(found[PYT_ENV_VARIABLE]), Path(found[DEPLOY_ENV_VARIABLE]))

    def command(self, deploy: bool) -> str:
        """``classification_pyt`` of one env, with its helpers, its bin first on PATH.

        TAO's launcher starts the first ``python`` on PATH. The training env gets the CPU shim,
        the deploy env the tensorrt/pycuda stand-ins.
        """
        root = self.deploy if deploy else self.pyt
        helpers = TAO_ENV_HELPERS / ("deploy-stand-ins" if deploy else "cpu-shim")
        path = f"{root / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return shlex.join(
            [
                "env",
                f"PATH={path}",
                f"PYTHONPATH={helpers}",
                str(root / "bin" / "classification_pyt"),
            ]
        )

    def process_env(self) -> Dict[str, str]:
        """What every step of the run inherits: :func:`nvidia_cpu_env`, step 1's NVIDIA check."""
        from tao_kfp.routes import pyt

        return {
            **nvidia_cpu_env(),
            pyt.NVIDIA_PYTHON_ENV[False]: str(self.pyt / "bin" / "python"),
            pyt.NVIDIA_PYTHON_ENV[True]: str(self.deploy / "bin" / "python"),
        }


def nvidia_cpu_env() -> Dict[str, str]:
    """The environment of every step of a PyTorch-route run on a CPU, wherever it runs.

    The envs of make demo-tao and the images of make e2e alike: the CPU shim on, tao-deploy's
    stop at the TensorRT stand-in recorded instead of failing the step, NVIDIA's telemetry off.
    """
    from tao_kfp.routes import pyt, pyt_steps

    return {pyt.CPU_ENV: "1", pyt_steps.STAND_IN_ENV: "1", "TELEMETRY_OPT_OUT": "yes"}


# The PyTorch route's demo: a few epochs of efficientvit_b0 at the demo's image size.
PYT_DEMO_PARAMETERS: Dict[str, Any] = {
    "dataset_format": "class_folders",
    "pretrained_model": "",
    "epochs": 3,
    "compress_epochs": 2,
    "batch_size": 32,
    "learning_rate": 0.001,
    "compression": "quantize",
    "engine_precision": "fp16",
    "num_gpus": "1",
}
# TAO's default augmentation flips and rotates by 90-270 degrees: a flipped or turned digit is
# another digit (6, 9), and 3 epochs from scratch learn nothing (0.12 top-1 measured). Off:
PYT_DEMO_AUGMENTATION: Dict[str, Any] = {
    **{
        name: {"enable": False}
        for name in (
            "random_flip",
            "random_rotate",
            "random_color",
            "random_erase",
            "random_aug",
            "with_scale_random_crop",
        )
    },
    "with_random_blur": False,
    "with_random_crop": False,
    "mixup_cutmix": False,
}


class LocalRunError(ValueError):
    """The local run cannot start (e.g. the dataset folder does not exist); says how to fix it."""


@dataclass
class DatasetInfo:
    """The dataset a local run reads: the folder asked for, its workspace path and classes."""

    source: str
    dataset_path: str  # workspace-relative, the pipeline's dataset_path parameter
    classes: List[str]


def _class_names(root: Path) -> List[str]:
    train = root / "train"
    if not train.is_dir():
        return []
    return sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))


def link_dataset(workspace: Path, dataset: Path) -> str:
    """Links ``dataset`` into ``workspace/data`` and returns its workspace-relative path.

    The pipeline only reads inside its workspace, so a symlink brings the folder in. The link
    name carries a hash of the resolved path: two datasets whose folders share a name get two
    links, and a link always points at the folder this run asked for. The name keeps only
    characters TAO's launcher carries (tao.launcher_safe), so paths built on it are safe in any
    TAO argument whatever the user's folder is called.
    """
    source = dataset.expanduser().resolve()
    if not source.is_dir():
        raise LocalRunError(
            f"--dataset {dataset}: {source} is not a folder. Give a folder with train/, val/ "
            "and test/, each holding one folder per class."
        )
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    name = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', source.name)}-{digest}"
    link = workspace / "data" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and Path(os.readlink(link)) != source:
        link.unlink()  # ours, left by a run whose folder has since moved: point it here
    if not link.is_symlink():
        if link.exists():
            raise LocalRunError(
                f"{link} exists and is not a link made by run-local; move it away or use "
                "another --output folder."
            )
        link.symlink_to(source, target_is_directory=True)
    return f"data/{name}"


def prepare_workspace(workspace: Path, dataset: Optional[Path], image_size: int) -> DatasetInfo:
    """Lays out the local workspace and says which dataset the run reads."""
    from tao_kfp import dataset as datasets
    from tao_kfp import spec as specs

    (workspace / "specs").mkdir(parents=True, exist_ok=True)
    base = specs.default_spec()
    (workspace / "specs" / "classification_spec.cfg").write_text(specs.dump_spec(base))
    if dataset is None:
        # One folder per image size: digits written at another size are another dataset.
        relative = f"data/digits-{image_size}px"
        target = workspace / relative
        if not datasets.is_complete(target):
            _progress(f"writing scikit-learn digits as {image_size}x{image_size} PNGs to {target}")
            datasets.write_digits(target, size=image_size)
        return DatasetInfo(str(target), relative, _class_names(target))
    relative = link_dataset(workspace, dataset)
    source = (workspace / relative).resolve()
    return DatasetInfo(str(source), relative, _class_names(source))


def demo_spec_overrides(image_size: int) -> Dict[str, Any]:
    """The demo overrides with the model's input size set to ``image_size`` square pixels."""
    return deep_merge(
        DEMO_SPEC_OVERRIDES,
        {"model_config": {"input_image_size": f"3,{image_size},{image_size}"}},
    )


def run_spec_overrides(image_size: int, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The spec overrides of a local run: the demo's, the input size, then the user's.

    Evaluation then sees images as training did: it center-crops exactly when training crops
    (a random crop trains on crops, a center crop too), unless the user's overrides set
    ``eval_config.enable_center_crop`` themselves.
    """
    merged = deep_merge(demo_spec_overrides(image_size), extra or {})
    if "enable_center_crop" not in (extra or {}).get("eval_config", {}):
        train = merged["train_config"]
        crops = bool(train.get("enable_random_crop") or train.get("enable_center_crop"))
        merged["eval_config"] = {**merged.get("eval_config", {}), "enable_center_crop": crops}
    return merged


class _OutputTail(io.TextIOBase):
    """Passes stdout through and keeps each task's last lines.

    kfp.local prints a task's output line by line to ``sys.stdout``
    (kfp/local/subprocess_task_handler.py, run_local_subprocess), so redirecting stdout sees it.
    """

    def __init__(self, stream, progress: _TaskProgress, keep: int = 200) -> None:
        self.stream = stream
        self.progress = progress
        self.keep = keep
        self.lines: Dict[str, Deque[str]] = {}

    def write(self, text: str) -> int:
        self.stream.write(text)
        task = self.progress.current
        if task:
            self.lines.setdefault(task, deque(maxlen=self.keep)).extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


# A Python exception line: "tao_kfp.steps.validate.InputError: 2 problem(s) ..." or "KeyError".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:|$)")
ERROR_LINES = 20


def meaningful_error(lines: Sequence[str]) -> str:
    """The lines of a failed task's output that say what went wrong, not its whole traceback.

    That is the last exception line and what follows it (a multi-line message), or the last
    non-empty lines when the task printed no Python exception.
    """
    cleaned = [_ANSI.sub("", line).rstrip() for line in lines]
    cleaned = [line for line in cleaned if line.strip()]
    for index in range(len(cleaned) - 1, -1, -1):
        if _EXCEPTION_LINE.match(cleaned[index]):
            return "\n".join(cleaned[index : index + ERROR_LINES])
    return "\n".join(cleaned[-ERROR_LINES:])


def _subfolders(folder: Path) -> set:
    if not folder.is_dir():
        return set()
    return {p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}


def disk_usage_mb(*folders: Optional[Path]) -> float:
    """Bytes under ``folders`` in MB (10^6), each file once (hard links share) and no symlinks."""
    seen, total = set(), 0
    for folder in folders:
        if folder is None or not folder.is_dir():
            continue
        for dirpath, _, filenames in os.walk(folder):
            for filename in filenames:
                info = os.lstat(os.path.join(dirpath, filename))
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return round(total / 1e6, 1)


def run_local(
    output_dir: str | Path,
    dataset: Optional[Path] = None,
    parameters: Optional[Dict[str, Any]] = None,
    spec_overrides: Optional[Dict[str, Any]] = None,
    image_size: int = 32,
    keep_checkpoints: str = "last-best",
    tao_version: str = "3",
    runner: Any = None,
    environment: Any = None,
) -> LocalRunSummary:
    """Runs the compiled pipeline locally and returns its summary (also written to disk).

    Args:
        output_dir: Folder for the workspace, kfp.local's pipeline root, summary and report.
        dataset: Class-folder dataset; ``None`` writes scikit-learn's digits.
        parameters: Pipeline parameters laid over ``DEMO_PARAMETERS``.
        spec_overrides: Spec fields laid (key by key) over the demo overrides.
        image_size: Model input size in pixels (square); also the size digits are written at.
        keep_checkpoints: ``last-best`` or ``all`` per-epoch checkpoints (CPU backend).
        tao_version: TAO route: ``3`` or ``5`` played by the CPU backend, ``6`` NVIDIA's code
            from the envs of make tao-env (ignored when ``environment`` is given).
        runner: kfp.local runner; default: a SubprocessRunner in this environment (tests/e2e
            pass a DockerRunner to run the same pipeline in containers).
        environment: EnvironmentConfig to adapt the package for; default:
            :func:`local_environment` of the workspace and ``tao_version``.

    Raises:
        LocalRunError: The run cannot start (the dataset folder does not exist, the output
            folder cannot be created).
    """
    from kfp import components, local

    from tao_kfp.cpu_backend.cli import TIMINGS_ENV
    from tao_kfp.cpu_backend.train import KEEP_CHECKPOINTS_ENV
    from tao_kfp.names import MODEL_KEY_ENV
    from tao_kfp.package import adapt_package, dump_package, load_package
    from tao_kfp.resources import shipped_file
    from tao_kfp.routes import route_for
    from tao_kfp.tao import launcher_problem

    out = Path(output_dir).resolve()
    workspace = out / "workspace"
    problem = launcher_problem(
        "the workspace folder", str(workspace), "Give --output a folder whose path has none."
    )
    if problem:
        raise LocalRunError(f"--output {output_dir}: {problem}")
    pipeline_root = out / "pipeline-root"
    try:
        pipeline_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LocalRunError(
            f"--output {output_dir}: cannot create {pipeline_root} ({error.strerror}). "
            "Give a folder this user can write."
        ) from None
    # A run reports only itself: nothing of an earlier run in this folder may be read back.
    for stale in ("summary.json", "report.html"):
        (out / stale).unlink(missing_ok=True)
    data = prepare_workspace(workspace, dataset, image_size)
    runs_before = _subfolders(pipeline_root)
    experiments_before = _subfolders(workspace / "experiments")

    # tao.version 6 runs NVIDIA's code: here from the envs of make tao-env, or in the images
    # of the caller's environment (tests/e2e: DockerRunner, which passes nvidia_cpu_env()).
    nvidia = None
    if environment is None and route_for(tao_version).name == "pyt":
        nvidia = NvidiaEnvs.from_environment()
    environment = environment or local_environment(workspace, tao_version, nvidia)
    route = route_for(environment.tao.version)
    docs = adapt_package(load_package(shipped_file(route.package)), environment)
    package = out / "pipeline.local.yaml"
    package.write_text(dump_package(docs))
    task_count = len(docs[0]["root"]["dag"]["tasks"])

    if route.name == "pyt":
        known = PYT_DEMO_PARAMETERS
        overrides = deep_merge(
            {"dataset": {"img_size": image_size, "augmentation": PYT_DEMO_AUGMENTATION}},
            spec_overrides or {},
        )
    else:
        known = DEMO_PARAMETERS
        overrides = run_spec_overrides(image_size, spec_overrides)
    arguments = {**known, **(parameters or {})}
    arguments["dataset_path"] = data.dataset_path
    arguments["spec_overrides"] = json.dumps(overrides)

    timings_file = out / "backend-timings.jsonl"
    timings_file.unlink(missing_ok=True)

    progress = _TaskProgress(task_count)
    root_logger = logging.getLogger()
    root_logger.addFilter(progress)
    # Inherited by every task's subprocess, and from there by the backend.
    process_env = {TIMINGS_ENV: str(timings_file), KEEP_CHECKPOINTS_ENV: keep_checkpoints}
    if nvidia is not None:
        process_env.update(nvidia.process_env())
    # kfp.local does not mount Secrets: stand in for the chart's default model key (TAO 3.x
    # evaluate and inference require -k).
    if not os.environ.get(MODEL_KEY_ENV):
        process_env[MODEL_KEY_ENV] = LOCAL_MODEL_KEY
    previous_env = {name: os.environ.get(name) for name in process_env}
    os.environ.update(process_env)
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=False,
    )
    pipeline = components.load_component_from_file(str(package))
    tail = _OutputTail(sys.stdout, progress)
    started = time.monotonic()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(tail):
            # Expected: GPUs, claims and Secrets are cluster plumbing that kfp.local ignores,
            # and the step images are stood in for by this very environment.
            warnings.filterwarnings("ignore", message=r"Task .* no effect in the current local")
            warnings.filterwarnings("ignore", message=r".*custom or non-Python base image")
            task = pipeline(**arguments)
    finally:
        root_logger.removeFilter(progress)
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    wall = time.monotonic() - started

    new_runs = _subfolders(pipeline_root) - runs_before
    run_dir = max(new_runs, key=lambda p: p.stat().st_mtime) if new_runs else None
    outputs = task_outputs(run_dir) if run_dir else {}
    steps = [asdict(t) for t in progress.timings.values()]
    silent = _silent_successes(docs[0], steps, outputs)
    for step in steps:
        step.pop("started")
        if step["task"] in silent:
            step["status"] = "FAILURE"
    failed_step = next((s["task"] for s in steps if s["status"] != "SUCCESS"), None)
    failed = failed_step is not None or len(steps) < task_count
    experiment = outputs.get("validate-inputs", {}).get("parameters", {}).get("run_dir")
    new_experiments = _subfolders(workspace / "experiments") - experiments_before
    experiment_dir = Path(experiment) if experiment else next(iter(new_experiments), None)
    summary = summarise(
        status="FAILURE" if failed else "SUCCESS",
        out=out,
        wall=wall,
        backend=backend_seconds(timings_file),
        steps=steps,
        outputs=outputs,
        report=route.report,
    )
    summary.route = route.name
    summary.dataset = {"path": data.source, "classes": data.classes}
    summary.experiment_dir = str(experiment_dir) if experiment_dir else None
    summary.disk_mb = disk_usage_mb(experiment_dir, run_dir)
    if failed_step:
        summary.failed_step = failed_step
        summary.error = (
            f"{failed_step} wrote none of its outputs although kfp.local reported SUCCESS: its "
            "container exited before its status could be read (see the log above)"
            if failed_step in silent
            else meaningful_error(tail.lines.get(failed_step, ()))
        )
        # Steps see the dataset through its workspace link: name the folder the user gave.
        summary.error = summary.error.replace(str(workspace / data.dataset_path), data.source)
    elif failed:
        summary.error = f"only {len(steps)} of {task_count} steps ran; see the log above."
    else:
        summary.final_model = task.output.path
    from tao_kfp.local_report import write_report

    summary.report = str(out / "report.html")
    (out / "summary.json").write_text(
        json.dumps(
            {**asdict(summary), "orchestration_seconds": summary.orchestration_seconds}, indent=2
        )
        + "\n"
    )
    write_report(Path(summary.report), summary, outputs)  # after summary.json: it links it
    return summary


def _silent_successes(
    pipeline_spec: Dict[str, Any], steps: List[Dict[str, Any]], outputs: Dict[str, Any]
) -> set:
    """Tasks reported SUCCESS that declare outputs but wrote no executor_output.json.

    kfp.local's DockerRunner assumes success when a container is removed before its exit
    status is read, which is what a step failing in its first second looks like (kfp 2.17.3
    kfp/local/docker_task_handler.py:143-160, auto_remove=True).
    """
    components = pipeline_spec["components"]
    declares_outputs = {
        name
        for name, task in pipeline_spec["root"]["dag"]["tasks"].items()
        if components[task["componentRef"]["name"]].get("outputDefinitions")
    }
    return {
        step["task"]
        for step in steps
        if step["status"] == "SUCCESS"
        and step["task"] in declares_outputs
        and step["task"] not in outputs
    }


def _json_mapping(text: str) -> Dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"not valid YAML/JSON: {error}") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(
            f"expected a YAML/JSON mapping such as '{{train_config: {{mixup_alpha: 0.2}}}}', "
            f"got {text!r}"
        )
    return data


def add_arguments(parser) -> None:
    """Registers the flags of ``tao-kfp run-local``."""
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument(
        "--output",
        default=".local-runs",
        help="output folder: workspace, pipeline root, summary.json and report.html",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=None,
        metavar="DIR",
        help="class-folder dataset (train/, val/, test/ with one folder per class); "
        "when not given, scikit-learn's digits are written into the workspace",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=32,
        help="model input size in pixels (square; sets model_config.input_image_size "
        "and the size digits are written at)",
    )
    parser.add_argument(
        "--epochs", type=int, default=DEMO_PARAMETERS["epochs"], help="training epochs"
    )
    parser.add_argument(
        "--retrain-epochs",
        type=int,
        default=DEMO_PARAMETERS["retrain_epochs"],
        help="epochs retraining the pruned model",
    )
    parser.add_argument(
        "--batch-size", type=int, default=DEMO_PARAMETERS["batch_size"], help="batch size"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEMO_PARAMETERS["learning_rate"],
        help="learning rate of the spec's lr_config scheduler",
    )
    parser.add_argument(
        "--prune-threshold",
        type=float,
        default=DEMO_PARAMETERS["prune_threshold"],
        help="pruning threshold in (0, 1]; higher prunes more",
    )
    parser.add_argument(
        "--spec-overrides",
        type=_json_mapping,
        default=None,
        metavar="YAML",
        help="TAO spec fields laid over the demo's, as the pipeline's spec_overrides, e.g. "
        "'{train_config: {mixup_alpha: 0.2}}'",
    )
    parser.add_argument(
        "--keep-checkpoints",
        choices=KEEP_CHOICES,
        default="last-best",
        help="per-epoch checkpoints kept by training: the last and the best (by val_acc), or all",
    )
    parser.add_argument(
        "--tao-version",
        choices=VERSIONS,
        default="3",
        help="TAO route: 3 (export + converter) or 5 (ONNX + gen_trt_engine), played by the CPU "
        "backend; 6 (PyTorch) runs NVIDIA's own code from the envs of make tao-env "
        f"(${PYT_ENV_VARIABLE}, ${DEPLOY_ENV_VARIABLE}; see make demo-tao)",
    )
    parser.add_argument(
        "--compression",
        choices=("distill", "quantize"),
        default=PYT_DEMO_PARAMETERS["compression"],
        help="tao.version 6: compress the trained model by distill or quantize",
    )


def run(args) -> int:
    """Runs ``tao-kfp run-local`` and returns the exit code (non-zero when a step failed)."""
    try:
        if args.tao_version == "6":  # the TF1 demo's figures do not fit it: its own defaults
            parameters = {"compression": args.compression}
        else:
            parameters = {
                "epochs": args.epochs,
                "retrain_epochs": args.retrain_epochs,
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
                "prune_threshold": args.prune_threshold,
            }
        summary = run_local(
            args.output,
            dataset=args.dataset,
            parameters=parameters,
            spec_overrides=args.spec_overrides,
            image_size=args.image_size,
            keep_checkpoints=args.keep_checkpoints,
            tao_version=args.tao_version,
        )
    except LocalRunError as error:
        print(f"run-local: {error}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0 if summary.status == "SUCCESS" else 1
