"""Per-image predictions over a labelled folder (steps 5, 8, 9), and step 9's predictions table.

TAO 3.x ``inference -d`` reads only the top-level files of a folder and writes ``result.csv``
into that folder (5.0 walks sub-folders, but writes the same rows), so a split's class folders
are first flattened into ``<results>/images/<number>_<file>`` (hard links, or copies across
volumes), and ``<results>/labels.json`` records each flattened name's class folder. The true
class is looked up there, never parsed out of a file name, so any folder name works: spaces,
digits, underscores, ``__``.

The images flattened are exactly those TAO's ``evaluate`` reads (``dataset.list_images``: the
Keras rule, subfolders and all seven extensions), so the per-class figures cover the same
images as evaluate's loss and top-k. ``inference -d`` reads only .jpg/.jpeg/.png, so a .bmp,
.ppm or .tif(f) image is written as a lossless PNG of the same pixels.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from tao_kfp import dataset
from tao_kfp.steps import report
from tao_kfp.tao import key_args, run_tao

# Images per inference batch (-b), as the seed pipeline used.
INFERENCE_BATCH_SIZE = 16
LABELS_FILE = "labels.json"
TABLE_ROWS = 200


@dataclass(frozen=True)
class LabelledPrediction:
    """One image: its class folder, TAO's prediction and confidence, and its source path."""

    image: str
    true_class: str
    predicted: str
    confidence: float


@dataclass
class InferenceResult:
    """Where result.csv is and how the predictions compare with the folder labels."""

    result_csv: str
    images: int
    correct: int
    accuracy: Optional[float]


def flatten_labelled_folder(source: Path, images_dir: Path) -> Dict[str, str]:
    """Links ``source/<class>/<file>`` to ``images_dir/<n>_<file>``; returns {name: class}."""
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir(parents=True)
    labels: Dict[str, str] = {}
    for class_name in dataset.class_folders(source):
        for image in dataset.list_images(source / class_name):
            name = f"{len(labels):06d}_{image.name}"
            if image.suffix.lower() in dataset.INFERENCE_EXTENSIONS:
                try:
                    os.link(image, images_dir / name)
                except OSError:
                    shutil.copy2(image, images_dir / name)
            else:
                name = f"{len(labels):06d}_{image.stem}.png"
                _write_png(image, images_dir / name)
            labels[name] = class_name
    if not labels:
        raise FileNotFoundError(
            f"no images ({', '.join(dataset.IMAGE_EXTENSIONS)}) under {source}/<class>/"
        )
    return labels


def _write_png(image: Path, target: Path) -> None:
    """Writes ``image`` as PNG; modes PNG cannot hold become RGB (TAO loads RGB or L anyway)."""
    from PIL import Image

    with Image.open(image) as handle:
        picture = handle if handle.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16") else None
        (picture or handle.convert("RGB")).save(target, format="PNG")


def predict_labelled_folder(
    *, model_path: str, spec_path: str, classmap: str, source: str, results_dir: str
) -> tuple[List[LabelledPrediction], Path]:
    """Runs ``inference -d`` over a class-folder split; returns its predictions and result.csv.

    Flags: ``-m -e -d -cm -b`` exist in 3.x and 5.0 (docs/tao-contract.md; 5.0
    makenet/scripts/inference.py:67 ``-b``, 71 ``-cm``); ``-k`` is passed always, and required
    on 3.x, whose inference declares it required (5.0 takes it as optional, inference.py:50).
    """
    from tao_kfp import parsers

    results = Path(results_dir)
    images_dir = results / "images"
    labels = flatten_labelled_folder(Path(source), images_dir)
    (results / LABELS_FILE).write_text(json.dumps(labels, indent=0))
    run_tao(
        ["inference", "-m", model_path, "-e", spec_path, "-d", str(images_dir), "-cm", classmap]
        + ["-b", str(INFERENCE_BATCH_SIZE)]
        + key_args(required_by_3x=True),
        log_path=results / "tao.log",
    )
    csv_path = images_dir / "result.csv"
    if not csv_path.is_file():
        # TAO 5 can exit 0 without output (e.g. no readable images); say so plainly.
        raise FileNotFoundError(f"inference wrote no {csv_path}; see its log above.")
    predictions = []
    for row in parsers.read_inference_csv(csv_path):
        name = Path(row.image).name
        if name not in labels:
            raise parsers.ParseError(
                f"{csv_path}: image {row.image!r} is not one of the {len(labels)} images given "
                f"to inference (see {results / LABELS_FILE})"
            )
        predictions.append(LabelledPrediction(row.image, labels[name], row.label, row.confidence))
    if len(predictions) != len(labels):
        raise parsers.ParseError(
            f"{csv_path} has {len(predictions)} rows for {len(labels)} images; see the log above."
        )
    return predictions, csv_path


def run_inference(
    *,
    model_path: str,
    spec_path: str,
    classmap: str,
    test_dir: str,
    results_dir: str,
    table=None,
    predictions=None,
) -> InferenceResult:
    """Runs ``inference -d`` on the test split; writes a Markdown table and result.csv artifacts.

    Args:
        model_path: Retrained checkpoint.
        spec_path: Retrain spec (preprocessing settings).
        classmap: ``classmap.json`` written by retrain.
        test_dir: The test split (class folders).
        results_dir: Folder for the flattened images, result.csv and the log.
        table: kfp ``Markdown`` artifact (optional).
        predictions: kfp ``Dataset`` artifact receiving result.csv (optional).

    Returns:
        Counts and accuracy against the folder labels.
    """
    results = Path(results_dir)
    rows, csv_path = predict_labelled_folder(
        model_path=model_path,
        spec_path=spec_path,
        classmap=classmap,
        source=test_dir,
        results_dir=results_dir,
    )
    correct = sum(1 for row in rows if row.predicted == row.true_class)
    accuracy = correct / len(rows) if rows else None
    result = InferenceResult(str(csv_path), len(rows), correct, accuracy)

    per_class = Counter(row.true_class for row in rows)
    hits = Counter(row.true_class for row in rows if row.predicted == row.true_class)
    summary = report.markdown_table(
        ["class", "images", "correct", "accuracy"],
        [[c, n, hits[c], f"{hits[c] / n:.3f}"] for c, n in sorted(per_class.items())],
    )
    shown = rows[:TABLE_ROWS]
    detail = report.markdown_table(
        ["image", "true class", "predicted", "confidence", "ok"],
        [
            [
                Path(r.image).name.split("_", 1)[-1],
                r.true_class,
                r.predicted,
                f"{r.confidence:.3f}",
                "yes" if r.predicted == r.true_class else "**no**",
            ]
            for r in shown
        ],
    )
    accuracy_text = f"{accuracy:.4f}" if accuracy is not None else "n/a"
    text = (
        f"# Inference on the test split\n\n{len(rows)} images predicted; "
        f"accuracy against folder labels: **{accuracy_text}**.\n\n## Per class\n\n{summary}\n"
        f"## Predictions (first {len(shown)} of {len(rows)}; all in result.csv)\n\n{detail}"
    )
    report.write_text(table, text)
    if predictions is not None:
        Path(predictions.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(csv_path, predictions.path)
        predictions.metadata.update(
            {"workspace_path": str(csv_path), "labels": str(results / LABELS_FILE)}
        )
        predictions.metadata["rows"] = len(rows)
    print(f"inference: {correct}/{len(rows)} correct ({accuracy_text})", flush=True)
    return result
