"""What a local run reports: its summary (``summary.json``) and the text printed at its end.

Read from what the run left behind: kfp.local's executor outputs and the CPU backend's timings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional


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
    dataset: Dict[str, Any] = field(default_factory=dict)  # {"path": ..., "classes": [...]}
    experiment_dir: Optional[str] = None  # <workspace>/experiments/<run id>
    failed_step: Optional[str] = None
    error: Optional[str] = None  # the failed step's last meaningful output lines
    disk_mb: float = 0.0  # what this run left on disk (experiment folder + kfp outputs)
    report: str = ""
    route: str = "tf1"  # tao_kfp.routes name; the *_pruning figures are its compression's
    compression: str = "pruning"  # what the accuracies are before and after (ReportKeys.label)
    notes: List[str] = field(default_factory=list)  # e.g. where tao-deploy stopped

    @property
    def orchestration_seconds(self) -> float:
        """Pipeline wall time not spent inside the backend's own compute."""
        return max(0.0, self.pipeline_seconds - self.backend_seconds)


def task_outputs(run_dir: Path) -> Dict[str, Dict[str, Any]]:
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


def backend_seconds(timings_file: Path) -> float:
    """Seconds the CPU backend spent computing, from the timings file it appends to."""
    if not timings_file.is_file():
        return 0.0
    lines = [json.loads(line) for line in timings_file.read_text().splitlines() if line.strip()]
    return round(sum(float(line.get("seconds", 0.0)) for line in lines), 1)


def summarise(status, out, wall, backend, steps, outputs, report=None) -> LocalRunSummary:
    """The summary of a run from its task statuses and the outputs its tasks wrote.

    ``report`` (routes.ReportKeys) says which tasks hold the figures; default the TF1 route's.
    """
    if report is None:
        from tao_kfp.routes import tf1

        report = tf1.ROUTE.report
    notes = [
        f"{task}: {value}"
        for task, task_outputs in outputs.items()
        for artifacts in task_outputs.get("artifacts", {}).values()
        for artifact in artifacts
        for key, value in artifact["metadata"].items()
        if key in ("stopped_at", "skipped")
    ]
    metrics = {task: _metrics_of(outputs, task) for task in outputs}
    train = metrics.get("train", {})
    compressed = metrics.get(report.compression, {})
    after = metrics.get(report.parameters_after, {})
    sizes = {
        name: metrics.get(task, {}).get(metric) for name, (task, metric) in report.sizes.items()
    }
    return LocalRunSummary(
        status=status,
        output_dir=str(out),
        pipeline_seconds=round(wall, 1),
        backend_seconds=backend,
        steps=steps,
        accuracy_before_pruning=metrics.get(report.accuracy_before, {}).get("top1_accuracy"),
        accuracy_after_pruning=metrics.get(report.accuracy_after, {}).get("top1_accuracy"),
        pruning_ratio=compressed.get("parameter_ratio"),
        parameters_before_pruning=_as_int(train.get("parameters")),
        parameters_after_pruning=_as_int(after.get("parameters")),
        model_sizes_mb={k: round(v, 3) for k, v in sizes.items() if v is not None},
        metrics=metrics,
        compression=report.label,
        notes=notes,
    )


def _as_int(value: Any) -> Optional[int]:
    return int(value) if isinstance(value, (int, float)) else None


def format_summary(summary: LocalRunSummary) -> str:
    """The summary printed at the end of a local run (a failed run shows only its own error)."""
    from tao_kfp.steps.report import readable

    lines = ["", f"Pipeline {summary.status} in {summary.pipeline_seconds:.1f} s", ""]
    lines.append(f"  {'step':<22}{'status':<10}{'seconds':>8}")
    for step in summary.steps:
        seconds = f"{step['seconds']:.1f}" if step["seconds"] is not None else "-"
        lines.append(f"  {step['task']:<22}{step['status']:<10}{seconds:>8}")
    classes = summary.dataset.get("classes", [])
    lines += [
        "",
        f"  dataset : {summary.dataset.get('path', 'n/a')}",
        f"  classes : {len(classes)} ({', '.join(classes[:12])}"
        f"{', ...' if len(classes) > 12 else ''})",
    ]
    if summary.status != "SUCCESS":
        lines += ["", f"  failed step: {summary.failed_step or 'n/a'}", "  error:"]
        lines += [f"    {line}" for line in (summary.error or "n/a").splitlines()]
    else:
        before, after = summary.parameters_before_pruning, summary.parameters_after_pruning
        what = summary.compression
        lines += [
            f"  top-1 accuracy before {what:<8}: {readable(summary.accuracy_before_pruning)}",
            f"  top-1 accuracy after {what:<9}: {readable(summary.accuracy_after_pruning)}",
        ]
        if summary.pruning_ratio is not None or before is not None:
            lines += [
                f"  pruning ratio (params kept)   : {readable(summary.pruning_ratio)}",
                f"  parameters before / after     : {readable(before)} / {readable(after)}",
            ]
        for name, size in summary.model_sizes_mb.items():
            lines.append(f"  size of {name:<22}: {size:.2f} MB")
        if summary.backend_seconds:  # the CPU backend's own timings (the TF1 routes)
            lines.append(
                f"  backend compute / orchestration: {summary.backend_seconds:.1f} s / "
                f"{summary.orchestration_seconds:.1f} s"
            )
        lines.append(f"  final model (pipeline output): {summary.final_model}")
        lines += [f"  note: {note}" for note in summary.notes]
    lines += [
        f"  experiment folder: {summary.experiment_dir or 'n/a'}",
        f"  disk left by this run: {summary.disk_mb:.1f} MB",
        f"  report : {summary.report}",
        f"  summary: {Path(summary.output_dir) / 'summary.json'}",
    ]
    return "\n".join(lines)
