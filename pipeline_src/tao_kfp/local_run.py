"""Runs the shipped pipeline end to end on this machine, with the CPU backend standing in for TAO.

The compiled package in ``files/pipelines`` is adapted for a local environment through the same
``adapt_package`` the chart's upload Job uses (workspace = a local folder, TAO commands = the
CPU backend), then executed with ``kfp.local``'s SubprocessRunner. Nothing here is a second
pipeline definition: what runs is what a cluster runs, minus the Kubernetes plumbing that
``kfp.local`` ignores.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shlex
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

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
    "num_gpus": 1,
}

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


@dataclass
class LocalRunSummary:
    """What ``make demo`` prints and writes to ``summary.json``."""

    status: str
    output_dir: str
    pipeline_seconds: float
    backend_seconds: float
    steps: List[Dict[str, Any]] = field(default_factory=list)
    accuracy_before_pruning: Optional[float] = None
    accuracy_after_pruning: Optional[float] = None
    pruning_ratio: Optional[float] = None
    parameters_before_pruning: Optional[int] = None
    parameters_after_pruning: Optional[int] = None
    model_sizes_mb: Dict[str, float] = field(default_factory=dict)
    metrics: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    final_model: Optional[str] = None  # the pipeline-level output Model (retrained checkpoint)
    report: str = ""

    @property
    def orchestration_seconds(self) -> float:
        """Pipeline wall time not spent inside the backend's own compute."""
        return max(0.0, self.pipeline_seconds - self.backend_seconds)


class _TaskProgress(logging.Filter):
    """Watches kfp.local's task log lines to time each step and print a progress line.

    kfp.local swaps the root logger's handlers during a run but not its filters, so a filter
    on the root logger sees every line it logs.
    """

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.timings: Dict[str, StepTiming] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = _ANSI.sub("", record.getMessage())
        started = _TASK_START.search(message)
        if started:
            name = started.group(1)
            self.timings[name] = StepTiming(task=name, started=time.monotonic())
            _progress(f"[{len(self.timings)}/{self.total}] {name} ...")
        ended = _TASK_END.search(message)
        if ended and ended.group(1) in self.timings:
            timing = self.timings[ended.group(1)]
            timing.status = ended.group(2)
            timing.seconds = round(time.monotonic() - timing.started, 2)
            _progress(
                f"[{len(self.timings)}/{self.total}] {timing.task}: {timing.status} "
                f"in {timing.seconds:.1f} s"
            )
        return True


def _progress(line: str) -> None:
    print(f"==> {line}", file=sys.stderr, flush=True)


def local_environment(workspace: Path):
    """The EnvironmentConfig of a laptop run: a local workspace and the CPU backend."""
    from tao_kfp.environment import EnvironmentConfig

    backend = f"{shlex.quote(sys.executable)} -m tao_kfp.cpu_backend"
    return EnvironmentConfig.model_validate(
        {
            "workspace": {"mountPath": str(workspace)},
            "tao": {"entrypoint": backend, "converter": f"{backend} converter"},
        }
    )


def prepare_workspace(workspace: Path, dataset: Optional[Path], image_size: int) -> str:
    """Lays out the local workspace and returns the run's dataset_path (workspace-relative)."""
    from tao_kfp import dataset as datasets
    from tao_kfp import spec as specs

    (workspace / "specs").mkdir(parents=True, exist_ok=True)
    base = specs.default_spec()
    (workspace / "specs" / "classification_spec.cfg").write_text(specs.dump_spec(base))
    if dataset is None:
        target = workspace / "data" / "digits"
        if not datasets.is_complete(target):
            _progress(f"writing scikit-learn digits as {image_size}x{image_size} PNGs to {target}")
            datasets.write_digits(target, size=image_size)
        return "data/digits"
    dataset = dataset.resolve()
    link = workspace / "data" / dataset.name
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        # The pipeline only reads inside its workspace; a link brings the dataset in.
        link.symlink_to(dataset, target_is_directory=True)
    return f"data/{dataset.name}"


def run_local(
    output_dir: str | Path,
    dataset: Optional[Path] = None,
    parameters: Optional[Dict[str, Any]] = None,
    spec_overrides: Optional[Dict[str, Any]] = None,
    image_size: int = 32,
    runner: Any = None,
    environment: Any = None,
) -> LocalRunSummary:
    """Runs the compiled pipeline locally and returns its summary (also written to disk).

    ``runner`` (default: kfp.local's SubprocessRunner in this environment) and ``environment``
    (default: :func:`local_environment`) let tests/e2e run the same pipeline in containers.
    """
    from kfp import components, local

    from tao_kfp.cpu_backend.cli import TIMINGS_ENV
    from tao_kfp.environment import adapt_package, dump_package, load_package
    from tao_kfp.resources import shipped_file

    out = Path(output_dir).resolve()
    workspace = out / "workspace"
    pipeline_root = out / "pipeline-root"
    pipeline_root.mkdir(parents=True, exist_ok=True)
    dataset_path = prepare_workspace(workspace, dataset, image_size)

    docs = adapt_package(
        load_package(shipped_file("pipelines/tao-classification.yaml")),
        environment or local_environment(workspace),
    )
    package = out / "pipeline.local.yaml"
    package.write_text(dump_package(docs))
    task_count = len(docs[0]["root"]["dag"]["tasks"])

    arguments = {**DEMO_PARAMETERS, **(parameters or {})}
    arguments["dataset_path"] = dataset_path
    arguments["spec_overrides"] = json.dumps({**DEMO_SPEC_OVERRIDES, **(spec_overrides or {})})

    timings_file = out / "backend-timings.jsonl"
    timings_file.unlink(missing_ok=True)

    progress = _TaskProgress(task_count)
    root_logger = logging.getLogger()
    root_logger.addFilter(progress)
    previous_timings_env = os.environ.get(TIMINGS_ENV)
    # Inherited by every task's subprocess, and from there by the backend.
    os.environ[TIMINGS_ENV] = str(timings_file)
    local.init(
        runner=runner or local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=False,
    )
    pipeline = components.load_component_from_file(str(package))
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # Expected: GPUs, claims and Secrets are cluster plumbing that kfp.local ignores,
            # and the step images are stood in for by this very environment.
            warnings.filterwarnings("ignore", message=r"Task .* no effect in the current local")
            warnings.filterwarnings("ignore", message=r".*custom or non-Python base image")
            task = pipeline(**arguments)
    finally:
        root_logger.removeFilter(progress)
        if previous_timings_env is None:
            os.environ.pop(TIMINGS_ENV, None)
        else:
            os.environ[TIMINGS_ENV] = previous_timings_env
    wall = time.monotonic() - started

    run_dir = _newest_run_dir(pipeline_root)
    outputs = _task_outputs(run_dir) if run_dir else {}
    steps = [asdict(t) for t in progress.timings.values()]
    for step in steps:
        step.pop("started")
    failed = len(steps) < task_count or any(s["status"] != "SUCCESS" for s in steps)
    summary = _summarise(
        status="FAILURE" if failed else "SUCCESS",
        out=out,
        wall=wall,
        backend=_backend_seconds(timings_file),
        steps=steps,
        outputs=outputs,
    )
    if not failed:
        summary.final_model = task.output.path
    summary.report = str(_write_report(out, summary, outputs))
    (out / "summary.json").write_text(
        json.dumps(
            {**asdict(summary), "orchestration_seconds": summary.orchestration_seconds}, indent=2
        )
    )
    return summary


def _newest_run_dir(pipeline_root: Path) -> Optional[Path]:
    runs = [p for p in pipeline_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _task_outputs(run_dir: Path) -> Dict[str, Dict[str, Any]]:
    """Per task: output parameters and artifacts (uri + metadata) from executor_output.json."""
    result: Dict[str, Dict[str, Any]] = {}
    for executor_output in sorted(run_dir.glob("*/executor_output.json")):
        data = json.loads(executor_output.read_text())
        artifacts = {
            name: [
                {"uri": a.get("uri", ""), "metadata": a.get("metadata", {})}
                for a in value.get("artifacts", [])
            ]
            for name, value in data.get("artifacts", {}).items()
        }
        result[executor_output.parent.name] = {
            "parameters": data.get("parameterValues", {}),
            "artifacts": artifacts,
        }
    return result


def _metrics_of(outputs: Dict[str, Dict[str, Any]], task: str) -> Dict[str, Any]:
    """Scalar metrics a task logged to its Output[Metrics] artifacts."""
    found: Dict[str, Any] = {}
    for artifact_list in outputs.get(task, {}).get("artifacts", {}).values():
        for artifact in artifact_list:
            for key, value in artifact["metadata"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found[key] = value
    return found


def _backend_seconds(timings_file: Path) -> float:
    if not timings_file.is_file():
        return 0.0
    lines = [json.loads(line) for line in timings_file.read_text().splitlines() if line.strip()]
    return round(sum(float(line.get("seconds", 0.0)) for line in lines), 2)


def _summarise(status, out, wall, backend, steps, outputs) -> LocalRunSummary:
    metrics = {task: _metrics_of(outputs, task) for task in outputs}
    train = metrics.get("train", {})
    retrain = metrics.get("retrain", {})
    prune = metrics.get("prune", {})
    sizes = {
        "trained_model": train.get("model_size_mb"),
        "pruned_model": prune.get("pruned_size_mb"),
        "retrained_model": retrain.get("model_size_mb"),
        "exported_fp32": metrics.get("export-fp32", {}).get("export_size_mb"),
        "exported_int8": metrics.get("export-int8", {}).get("export_size_mb"),
        "engine_int8": metrics.get("convert-tensorrt", {}).get("engine_size_mb"),
    }
    return LocalRunSummary(
        status=status,
        output_dir=str(out),
        pipeline_seconds=round(wall, 2),
        backend_seconds=backend,
        steps=steps,
        accuracy_before_pruning=metrics.get("evaluate", {}).get("top1_accuracy"),
        accuracy_after_pruning=metrics.get("re-evaluate", {}).get("top1_accuracy"),
        pruning_ratio=prune.get("parameter_ratio"),
        parameters_before_pruning=_as_int(train.get("parameters")),
        parameters_after_pruning=_as_int(retrain.get("parameters")),
        model_sizes_mb={k: v for k, v in sizes.items() if v is not None},
        metrics=metrics,
    )


def _as_int(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) else None


def _write_report(out: Path, summary: LocalRunSummary, outputs: Dict[str, Dict[str, Any]]) -> Path:
    """A one-page HTML report: step table, headline figures, links to each step's artifacts."""
    from tao_kfp.steps.report import readable

    rows = "".join(
        f"<tr><td>{html.escape(s['task'])}</td><td>{s['status']}</td>"
        f"<td>{s['seconds'] if s['seconds'] is not None else ''}</td></tr>"
        for s in summary.steps
    )
    figures = {
        "Top-1 accuracy before pruning": summary.accuracy_before_pruning,
        "Top-1 accuracy after pruning and retraining": summary.accuracy_after_pruning,
        "Pruning ratio (parameters kept)": summary.pruning_ratio,
        "Parameters before pruning": summary.parameters_before_pruning,
        "Parameters after pruning": summary.parameters_after_pruning,
        **{f"Size of {k} (MB)": v for k, v in summary.model_sizes_mb.items()},
        "Pipeline wall time (s)": summary.pipeline_seconds,
        "Backend compute time (s)": summary.backend_seconds,
    }
    figure_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{readable(v)}</td></tr>" for k, v in figures.items()
    )
    links = []
    for task, data in outputs.items():
        for name, artifact_list in data["artifacts"].items():
            for artifact in artifact_list:
                uri = artifact["uri"]
                if Path(uri).is_file() and Path(uri).suffix in ("", ".html", ".md", ".csv"):
                    links.append(
                        f'<li><a href="{html.escape(Path(uri).as_uri())}">'
                        f"{html.escape(task)}: {html.escape(name)}</a></li>"
                    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>TAO classification, local run</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 12px;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style></head><body>
<h1>TAO classification pipeline: local CPU run ({summary.status})</h1>
<p>The CPU backend stands in for TAO; its checkpoints are not TAO files.</p>
<h2>Results</h2><table>{figure_rows}</table>
<h2>Steps</h2><table><tr><th>task</th><th>status</th><th>seconds</th></tr>{rows}</table>
<h2>Artifacts</h2><ul>{"".join(links)}</ul></body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def format_summary(summary: LocalRunSummary) -> str:
    """The summary table printed at the end of a local run."""
    lines = ["", f"Pipeline {summary.status} in {summary.pipeline_seconds:.1f} s", ""]
    lines.append(f"  {'step':<22}{'status':<10}{'seconds':>8}")
    for step in summary.steps:
        seconds = f"{step['seconds']:.1f}" if step["seconds"] is not None else "-"
        lines.append(f"  {step['task']:<22}{step['status']:<10}{seconds:>8}")

    def fmt(value: Any, pattern: str = "{}") -> str:
        return pattern.format(value) if value is not None else "n/a"

    lines += [
        "",
        f"  top-1 accuracy before pruning : {fmt(summary.accuracy_before_pruning, '{:.4f}')}",
        f"  top-1 accuracy after pruning  : {fmt(summary.accuracy_after_pruning, '{:.4f}')}",
        f"  pruning ratio (params kept)   : {fmt(summary.pruning_ratio, '{:.3f}')}",
        f"  parameters before / after     : {fmt(summary.parameters_before_pruning, '{:,}')}"
        f" / {fmt(summary.parameters_after_pruning, '{:,}')}",
    ]
    for name, size in summary.model_sizes_mb.items():
        lines.append(f"  size of {name:<22}: {size:.3f} MB")
    lines += [
        f"  backend compute / orchestration: {summary.backend_seconds:.1f} s / "
        f"{summary.orchestration_seconds:.1f} s",
        f"  final model (pipeline output): {summary.final_model or 'n/a'}",
        f"  report : {summary.report}",
        f"  summary: {Path(summary.output_dir) / 'summary.json'}",
    ]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    """Registers the flags of ``tao-kfp run-local``."""
    parser.add_argument(
        "--output", default=".local-runs", help="output folder (default %(default)s)"
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="class-folder dataset (train/, val/, test/ with one folder per class); "
        "default: scikit-learn's digits",
    )
    parser.add_argument("--epochs", type=int, default=DEMO_PARAMETERS["epochs"])
    parser.add_argument("--retrain-epochs", type=int, default=DEMO_PARAMETERS["retrain_epochs"])
    parser.add_argument("--prune-threshold", type=float, default=DEMO_PARAMETERS["prune_threshold"])
    parser.add_argument("--image-size", type=int, default=32, help="digits image size in pixels")


def run(args) -> int:
    """Runs ``tao-kfp run-local`` and returns the exit code (non-zero when a step failed)."""
    summary = run_local(
        args.output,
        dataset=args.dataset,
        parameters={
            "epochs": args.epochs,
            "retrain_epochs": args.retrain_epochs,
            "prune_threshold": args.prune_threshold,
        },
        image_size=args.image_size,
    )
    print(format_summary(summary))
    return 0 if summary.status == "SUCCESS" else 1
