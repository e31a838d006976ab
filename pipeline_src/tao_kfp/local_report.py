"""``report.html`` of a local run: the page an ML engineer reads to judge the model.

One self-contained file (plots and sample images inline as PNG data URIs, so it opens the
same from any folder): status and, for a failed run, the failing step and its error; the
pruning trade-off (parameters, sizes, accuracy, the engine's measured latency); confusion
matrices and per-class scores before and after pruning; training curves; sample test images
with predicted and true labels; where the run's files are. Plots use matplotlib (the ``cpu``
extra); nothing here runs inside a pipeline step.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from tao_kfp.steps.report import readable

SAMPLE_IMAGES = 12
EVALUATIONS = (("evaluate", "before pruning"), ("re-evaluate", "after pruning and retraining"))
# Printed by the CPU backend's converter (tao_kfp/cpu_backend/convert.py, benchmark()).
_BENCHMARK = re.compile(
    r"Benchmark: batch (?P<batch>\d+), (?P<runs>\d+) runs, mean latency (?P<latency>[\d.]+) ms"
    r".*throughput (?P<throughput>[\d.]+) images/s"
)
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}tr:nth-child(even){background:#f4f4f4}
th{background:#e8e8e8}.fail{color:#b00020}.ok{color:#1b7f3b}.row{display:flex;gap:2em;
flex-wrap:wrap;align-items:flex-start}pre{background:#fff3f3;padding:.8em;white-space:pre-wrap}
figure{margin:0;text-align:center;font-size:12px}figure img{image-rendering:pixelated;
width:72px;height:72px;border:3px solid #1b7f3b}figure.wrong img{border-color:#b00020}
.note{color:#555;font-size:90%}.cm{flex:1 1 45%;max-width:620px}.cm img{width:100%}
.curves img{max-width:100%}"""


@dataclass
class Evaluation:
    """Scores of one evaluate step: class names, confusion matrix and per-class scores."""

    class_names: List[str]
    confusion_matrix: List[List[int]]
    top1_accuracy: Optional[float] = None
    per_class: Dict[str, Dict[str, float]] = field(default_factory=dict)


def read_evaluation(task_outputs: Dict[str, Any]) -> Optional[Evaluation]:
    """Reads an evaluate step's outputs: its ClassificationMetrics and Metrics artifacts.

    The one place that knows how the evaluate step publishes its scores. The confusion matrix
    is KFP's ``confusionMatrix`` metadata ({annotationSpecs: [{displayName}], rows: [{row}]},
    kfp/dsl/types/artifact_types.py, ClassificationMetrics.log_confusion_matrix); per-class
    precision/recall/F1 are the ``<class>_precision|recall|f1`` metrics, support is the
    matrix row sum. Returns None when the step published no matrix (it did not run).
    """
    matrix_meta, scalars = None, {}
    for artifact_list in task_outputs.get("artifacts", {}).values():
        for artifact in artifact_list:
            metadata = artifact.get("metadata", {})
            matrix_meta = metadata.get("confusionMatrix", matrix_meta)
            scalars.update({k: v for k, v in metadata.items() if isinstance(v, (int, float))})
    if not matrix_meta:
        return None
    names = [spec["displayName"] for spec in matrix_meta.get("annotationSpecs", [])]
    matrix = [[int(v) for v in row["row"]] for row in matrix_meta.get("rows", [])]
    per_class = {}
    for index, name in enumerate(names):
        per_class[name] = {
            "precision": scalars.get(f"{name}_precision"),
            "recall": scalars.get(f"{name}_recall"),
            "f1": scalars.get(f"{name}_f1"),
            "support": sum(matrix[index]) if index < len(matrix) else None,
        }
    return Evaluation(names, matrix, scalars.get("top1_accuracy"), per_class)


def engine_benchmark(experiment_dir: Optional[Path]) -> Optional[Dict[str, float]]:
    """The engine's latency and throughput as the converter measured them on this machine."""
    log = experiment_dir / "tensorrt" / "tao.log" if experiment_dir else None
    if not log or not log.is_file():
        return None
    found = None
    for line in log.read_text(errors="replace").splitlines():
        match = _BENCHMARK.search(line)
        if match:
            found = {k: float(v) for k, v in match.groupdict().items()}
    return found


def _read_csv(path: Path) -> List[Dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to PNG only
    import matplotlib.pyplot as plt

    return plt


def confusion_heatmap(evaluation: Evaluation, title: str) -> str:
    """A heat map of the confusion matrix (rows: true class, columns: predicted)."""
    plt = _pyplot()
    size = len(evaluation.class_names)
    side = min(3 + 0.45 * size, 9)
    figure, axes = plt.subplots(figsize=(side, side * 0.9))
    image = axes.imshow(evaluation.confusion_matrix, cmap="Blues")
    # Folder names are plain text: a "$" would start matplotlib's mathtext (and can fail it).
    names = [name.replace("$", r"\$") for name in evaluation.class_names]
    axes.set_xticks(range(size), names, rotation=90 if size > 12 else 0)
    axes.set_yticks(range(size), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    if size <= 20:
        peak = max((max(row) for row in evaluation.confusion_matrix), default=0)
        for i, row in enumerate(evaluation.confusion_matrix):
            for j, value in enumerate(row):
                if value:
                    color = "white" if value > peak / 2 else "black"
                    axes.text(j, i, value, ha="center", va="center", fontsize=8, color=color)
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _png(figure)


def training_curves(experiment_dir: Optional[Path]) -> str:
    """Accuracy and loss per epoch of train and retrain (from their training.csv)."""
    runs = {
        name: _read_csv(experiment_dir / name / "training.csv") if experiment_dir else []
        for name in ("train", "retrain")
    }
    if not any(runs.values()):
        return "<p>No training.csv was written.</p>"
    plt = _pyplot()
    figure, (acc_axes, loss_axes) = plt.subplots(1, 2, figsize=(11, 3.6))
    offset = 0
    for name, rows in runs.items():
        if not rows:
            continue
        epochs = [offset + row["epoch"] for row in rows]
        marker = "o" if len(rows) == 1 else None  # a line through one point draws nothing
        for axes, key in ((acc_axes, "acc"), (loss_axes, "loss")):
            axes.plot(epochs, [r[key] for r in rows], "-", marker=marker, label=f"{name} ({key})")
            axes.plot(
                epochs,
                [r[f"val_{key}"] for r in rows],
                "--",
                marker=marker,
                label=f"{name} (val_{key})",
            )
        offset = epochs[-1]
    if runs["train"] and runs["retrain"]:
        for axes in (acc_axes, loss_axes):
            axes.axvline(offset - len(runs["retrain"]) + 0.5, color="#999", lw=1)
            axes.text(
                offset - len(runs["retrain"]) + 0.6,
                axes.get_ylim()[1],
                "pruned",
                va="top",
                fontsize=8,
                color="#666",
            )
    for axes, title in ((acc_axes, "Accuracy"), (loss_axes, "Loss")):
        axes.set_title(title)
        axes.set_xlabel("epoch (retraining continues the count)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    return _png(figure)


def _thumbnail(path: Path) -> Optional[str]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((96, 96))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
    except OSError:
        return None
    return base64.b64encode(buffer.getvalue()).decode()


def sample_predictions(experiment_dir: Optional[Path]) -> str:
    """A few test images with predicted and true labels, the misclassified first."""
    from tao_kfp import parsers
    from tao_kfp.steps.inference import LABELS_FILE

    inference_dir = experiment_dir / "inference" if experiment_dir else None
    result = inference_dir / "images" / "result.csv" if inference_dir else None
    if not result or not result.is_file():
        return "<p>Inference did not run.</p>"
    # The inference step records each flattened image's class folder; names are never parsed.
    labels = json.loads((inference_dir / LABELS_FILE).read_text())

    def true_class(image: str) -> str:
        return labels.get(Path(image).name, "?")

    rows = parsers.read_inference_csv(result)
    wrong = [r for r in rows if r.label != true_class(r.image)]
    right = [r for r in rows if r.label == true_class(r.image)]
    figures = []
    for row in (wrong + right)[:SAMPLE_IMAGES]:
        image = Path(row.image)
        if not image.is_absolute():
            image = result.parent / image
        data = _thumbnail(image)
        if data is None:
            continue
        ok = row.label == true_class(row.image)
        figures.append(
            f'<figure class="{"right" if ok else "wrong"}"><img alt="{html.escape(image.name)}" '
            f'src="data:image/png;base64,{data}"><figcaption>predicted '
            f"<b>{html.escape(row.label)}</b> ({row.confidence:.2f})<br>true "
            f"{html.escape(true_class(row.image))}</figcaption></figure>"
        )
    return (
        f"<p>{len(wrong)} of {len(rows)} test images misclassified; shown first (red).</p>"
        f'<div class="row">{"".join(figures)}</div>'
    )


def _mb(value: Optional[float]) -> str:
    return f"{value:.2f}" if value is not None else "n/a"


def _table(header: List[str], rows: List[List[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(readable(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def per_class_table(before: Optional[Evaluation], after: Optional[Evaluation]) -> str:
    """Precision, recall, F1 and support per class, before and after pruning side by side."""
    names = (before or after).class_names
    rows = []
    for name in names:
        row: List[Any] = [name]
        for evaluation in (before, after):
            scores = evaluation.per_class.get(name, {}) if evaluation else {}
            row += [scores.get(k) for k in ("precision", "recall", "f1")]
        row.append((before or after).per_class.get(name, {}).get("support"))
        rows.append(row)
    header = [
        "class",
        "precision before",
        "recall before",
        "F1 before",
        "precision after",
        "recall after",
        "F1 after",
        "support",
    ]
    return _table(header, rows)


def trade_off_table(summary, benchmark: Optional[Dict[str, float]], fp32_export: str = "") -> str:
    """Parameters, sizes and accuracy before and after pruning, and the engine's speed.

    ``fp32_export`` is step 10's file: a ``.onnx`` one is the TAO 5 route, which exports the
    ONNX model once and builds the INT8 engine from it (no INT8 export, no ``.etlt``).
    """
    sizes = summary.model_sizes_mb
    rows = [
        ["parameters", summary.parameters_before_pruning, summary.parameters_after_pruning],
        [
            "checkpoint size (MB)",
            _mb(sizes.get("trained_model")),
            _mb(sizes.get("retrained_model")),
        ],
        ["top-1 accuracy on test", summary.accuracy_before_pruning, summary.accuracy_after_pruning],
    ]
    table = _table(["", "before pruning", "after pruning + retraining"], rows)
    onnx_route = fp32_export.endswith(".onnx")
    if onnx_route:
        files = [["ONNX export, FP32 (.onnx)", _mb(sizes.get("exported_fp32"))]]
        note = (
            "TAO 5 exports the FP32 ONNX model once; <code>gen_trt_engine</code> calibrates "
            "and quantizes it into the INT8 engine, which is why the engine is the small file."
        )
    else:
        files = [
            ["ONNX export, FP32 (.etlt)", _mb(sizes.get("exported_fp32"))],
            ["ONNX export, INT8 (.etlt)", _mb(sizes.get("exported_int8"))],
        ]
        note = (
            "Why the INT8 ONNX export is the size of the FP32 one: "
            "<code>export --data_type int8</code> writes the same FP32 graph plus a calibration "
            "cache (per-tensor ranges); the 8-bit weights only exist in the engine the converter "
            "builds from both, which is why the engine is the small file."
        )
    exports = _table(
        ["deployable file", "size (MB)"],
        files + [["INT8 engine", _mb(sizes.get("engine_int8"))]],
    )
    speed = "<p>The engine was not built.</p>"
    if benchmark:
        speed = (
            f"<p>INT8 engine on this machine (ONNX Runtime CPU, batch {benchmark['batch']:.0f}, "
            f"{benchmark['runs']:.0f} timed runs): mean latency <b>{benchmark['latency']:.1f} ms"
            f"</b> per batch, throughput <b>{benchmark['throughput']:,.0f} images/s</b>. "
            "Figures measured on a shared CPU; a TensorRT engine on a GPU differs.</p>"
        )
    return (
        f'<div class="row"><div>{table}<p>Parameters kept: '
        f"<b>{readable(summary.pruning_ratio)}</b></p></div><div>{exports}</div></div>{speed}"
        f'<p class="note">{note}</p>'
    )


def compression_section(summary, outputs: Dict[str, Dict[str, Any]], report) -> str:
    """A route other than TF1's: accuracy and sizes before and after compression, notes.

    ``report`` is the route's ReportKeys: which tasks evaluated the model before and after.
    """
    sizes = summary.model_sizes_mb
    what = summary.compression
    table = _table(
        ["", f"before {what}", f"after {what}"],
        [
            [
                "top-1 accuracy on test",
                summary.accuracy_before_pruning,
                summary.accuracy_after_pruning,
            ],
            [
                "checkpoint size (MB)",
                _mb(sizes.get("trained_model")),
                _mb(sizes.get("compressed_model")),
            ],
        ],
    )
    files = _table(
        ["file", "size (MB)"],
        [[name.replace("_", " "), _mb(size)] for name, size in sizes.items()],
    )
    before = read_evaluation(outputs.get(report.accuracy_before, {}))
    after = read_evaluation(outputs.get(report.accuracy_after, {}))
    matrices = "".join(
        f'<div class="cm">{confusion_heatmap(e, f"Confusion matrix, {label} {what}")}</div>'
        for e, label in ((before, "before"), (after, "after"))
        if e
    )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in summary.notes)
    return (
        f"<h2>Compression trade-off ({html.escape(what)})</h2>"
        f'<div class="row"><div>{table}</div><div>{files}</div></div>'
        + (f"<ul>{notes}</ul>" if notes else "")
        + f"<h2>Test-set scores before and after {html.escape(what)}</h2>"
        + f'<div class="row">{matrices}</div>'
        + (per_class_table(before, after) if before or after else "")
    )


def _files_section(summary, experiment_dir: Optional[Path]) -> str:
    out = Path(summary.output_dir)
    items = [("output folder", out), ("summary.json", out / "summary.json")]
    if experiment_dir:
        items += [
            ("experiment folder (every step's files)", experiment_dir),
            ("training curve data (train)", experiment_dir / "train" / "training.csv"),
            ("training curve data (retrain)", experiment_dir / "retrain" / "training.csv"),
            (
                "predictions for every test image",
                experiment_dir / "inference" / "images" / "result.csv",
            ),
            ("run parameters and plan", experiment_dir / "run.json"),
        ]
    entries = [
        f'<li>{html.escape(label)}: <a href="{html.escape(path.as_uri())}">'
        f"{html.escape(str(path))}</a></li>"
        for label, path in items
        if path.exists()
    ]
    if summary.final_model:  # a binary checkpoint: its path, not a link a browser can't show
        entries.append(
            f"<li>final model (the pipeline's output Model): "
            f"<code>{html.escape(summary.final_model)}</code></li>"
        )
    return f"<ul>{''.join(entries)}</ul>"


def render(summary, outputs: Dict[str, Dict[str, Any]]) -> str:
    """The report page of ``summary`` (a LocalRunSummary) and its tasks' ``outputs``."""
    experiment_dir = Path(summary.experiment_dir) if summary.experiment_dir else None
    ok = summary.status == "SUCCESS"
    classes = summary.dataset.get("classes", [])
    parts = [
        f"<h1>TAO classification, local CPU run: "
        f'<span class="{"ok" if ok else "fail"}">{html.escape(summary.status)}</span></h1>',
        f"<p>Dataset <code>{html.escape(str(summary.dataset.get('path', 'n/a')))}</code>, "
        f"{len(classes)} classes: {html.escape(', '.join(classes))}.<br>"
        f"Pipeline wall time {summary.pipeline_seconds:.1f} s; this run left "
        f"{summary.disk_mb:.1f} MB on disk. "
        + (
            "The CPU backend stands in for TAO: its checkpoints are not TAO files.</p>"
            if summary.route == "tf1"
            else "NVIDIA's own TAO code ran every step, on the CPU.</p>"
        ),
    ]
    if not ok:
        parts.append(
            f"<h2>Failed at step {html.escape(summary.failed_step or 'n/a')}</h2>"
            f"<pre>{html.escape(summary.error or 'n/a')}</pre>"
        )
    steps = _table(
        ["step", "status", "seconds"],
        [
            [s["task"], s["status"], f"{s['seconds']:.1f}" if s["seconds"] is not None else "-"]
            for s in summary.steps
        ],
    )
    if ok and summary.route != "tf1":
        from tao_kfp.routes import ROUTES

        report = next(r.report for r in ROUTES if r.name == summary.route)
        parts.append(compression_section(summary, outputs, report))
    elif ok:
        before = read_evaluation(outputs.get("evaluate", {}))
        after = read_evaluation(outputs.get("re-evaluate", {}))
        parts += [
            "<h2>Pruning trade-off</h2>",
            trade_off_table(
                summary,
                engine_benchmark(experiment_dir),
                str(outputs.get("export-fp32", {}).get("parameters", {}).get("Output", "")),
            ),
            "<h2>Test-set scores before and after pruning</h2>",
            '<div class="row">'
            + "".join(
                f'<div class="cm">{confusion_heatmap(e, f"Confusion matrix, {label}")}</div>'
                for e, (_, label) in zip((before, after), EVALUATIONS)
                if e
            )
            + "</div>",
            per_class_table(before, after) if before or after else "",
            "<h2>Training curves</h2>",
            f'<div class="curves">{training_curves(experiment_dir)}</div>',
            "<h2>Sample test images (pruned, retrained model)</h2>",
            sample_predictions(experiment_dir),
        ]
    parts += [
        "<h2>Steps</h2>",
        steps,
        "<h2>Files of this run</h2>",
        _files_section(summary, experiment_dir),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>TAO classification, local run ({html.escape(summary.status)})</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(path: Path, summary, outputs: Dict[str, Dict[str, Any]]) -> Path:
    """Writes the report page and returns its path."""
    path.write_text(render(summary, outputs), encoding="utf-8")
    return path
