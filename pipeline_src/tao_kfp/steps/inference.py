"""Step 9: classify every test image and publish a readable predictions table.

TAO 3.x ``inference -d`` reads only the top-level files of a folder and writes
``result.csv`` into that folder, so the test split's class folders are first flattened into
``<results>/images/<class>__<file>`` (hard links, or copies across volumes). The true class
is then known from each file name.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tao_kfp.steps import report
from tao_kfp.tao import key_args, run_tao

# inference -d accepts only these (case-insensitive).
INFERENCE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SEPARATOR = "__"
TABLE_ROWS = 200


@dataclass
class InferenceResult:
    """Where result.csv is and how the predictions compare with the folder labels."""

    result_csv: str
    images: int
    correct: int
    accuracy: Optional[float]


def flatten_test_split(test_dir: Path, images_dir: Path) -> int:
    """Links ``test/<class>/<file>`` to ``images/<class>__<file>``; returns the image count."""
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir(parents=True)
    count = 0
    for class_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        for image in sorted(class_dir.iterdir()):
            if image.suffix.lower() not in INFERENCE_EXTENSIONS:
                continue
            target = images_dir / f"{class_dir.name}{SEPARATOR}{image.name}"
            try:
                os.link(image, target)
            except OSError:
                shutil.copy2(image, target)
            count += 1
    if count == 0:
        raise FileNotFoundError(f"no .jpg/.jpeg/.png images under {test_dir}/<class>/")
    return count


def true_class(image_path: str) -> str:
    """The class encoded in a flattened file name (``<class>__<file>``)."""
    return Path(image_path).name.split(SEPARATOR, 1)[0]


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
    from tao_kfp import parsers

    results = Path(results_dir)
    images_dir = results / "images"
    count = flatten_test_split(Path(test_dir), images_dir)
    run_tao(
        ["inference", "-m", model_path, "-e", spec_path, "-d", str(images_dir), "-cm", classmap]
        + key_args(),
        log_path=results / "tao.log",
    )
    csv_path = images_dir / "result.csv"
    if not csv_path.is_file():
        # TAO 5 can exit 0 without output (e.g. no readable images); say so plainly.
        raise FileNotFoundError(f"inference wrote no {csv_path}; see its log above.")
    rows = parsers.read_inference_csv(csv_path)
    correct = sum(1 for row in rows if row.label == true_class(row.image))
    accuracy = correct / len(rows) if rows else None
    result = InferenceResult(str(csv_path), len(rows), correct, accuracy)

    per_class = Counter(true_class(row.image) for row in rows)
    hits = Counter(true_class(row.image) for row in rows if row.label == true_class(row.image))
    summary = report.markdown_table(
        ["class", "images", "correct", "accuracy"],
        [[c, n, hits[c], f"{hits[c] / n:.3f}"] for c, n in sorted(per_class.items())],
    )
    shown = rows[:TABLE_ROWS]
    detail = report.markdown_table(
        ["image", "true class", "predicted", "confidence", "ok"],
        [
            [
                Path(r.image).name.split(SEPARATOR, 1)[-1],
                true_class(r.image),
                r.label,
                f"{r.confidence:.3f}",
                "yes" if r.label == true_class(r.image) else "**no**",
            ]
            for r in shown
        ],
    )
    accuracy_text = f"{accuracy:.4f}" if accuracy is not None else "n/a"
    text = (
        f"# Inference on the test split\n\n{len(rows)} of {count} images predicted; "
        f"accuracy against folder labels: **{accuracy_text}**.\n\n## Per class\n\n{summary}\n"
        f"## Predictions (first {len(shown)} of {len(rows)}; all in result.csv)\n\n{detail}"
    )
    report.write_text(table, text)
    if predictions is not None:
        Path(predictions.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(csv_path, predictions.path)
        predictions.metadata.update({"workspace_path": str(csv_path), "rows": len(rows)})
    print(f"inference: {correct}/{len(rows)} correct ({accuracy_text})", flush=True)
    return result
