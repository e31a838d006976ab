"""Step 2: turn a Pascal VOC 2012 folder into class folders, or report "skipped"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tao_kfp import dataset


@dataclass
class PrepareResult:
    """Where the class folders are and what the step did (prepared, reused or skipped)."""

    dataset_dir: str
    status: str


def prepare_dataset(
    *, dataset_format: str, source: str, dataset_dir: str, seed: int = dataset.DEFAULT_SEED
) -> PrepareResult:
    """Converts VOC into ``dataset_dir`` with the seeded 70/10/20 split; no-op for class folders.

    The step always runs (rather than sitting under ``dsl.If``) because downstream tasks
    consume its ``dataset_dir`` output.
    """
    if dataset_format != "voc":
        print(f"dataset is already in class folders at {dataset_dir}: skipped", flush=True)
        return PrepareResult(dataset_dir=dataset_dir, status="skipped")
    if dataset.is_complete(dataset_dir):
        print(f"{dataset_dir} already converted (retry of this run): reused", flush=True)
        return PrepareResult(dataset_dir=dataset_dir, status="reused")
    out = dataset.convert_voc(source, Path(dataset_dir), seed=seed)
    for split, classes in dataset.scan_class_folders(out).items():
        total = sum(len(images) for images in classes.values())
        print(f"{split}: {total} images in {len(classes)} classes", flush=True)
    return PrepareResult(dataset_dir=str(out), status="prepared")
