"""Tiny datasets the tests build on disk: class folders and a VOC2012 tree."""

from __future__ import annotations

from pathlib import Path


def write_images(folder: Path, count: int, color=(200, 30, 30), size=16) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (size, size), color).save(folder / f"img_{index:03d}.png")


def make_class_folders(root: Path, classes=("cat", "dog", "fox"), counts=(6, 2, 2)) -> Path:
    """train/val/test with the given per-class counts (defaults satisfy the minimum rule)."""
    for split, count in zip(("train", "val", "test"), counts):
        for index, name in enumerate(classes):
            write_images(root / split / name, count, color=(40 * index, 100, 150))
    return root


def write_voc(root: Path) -> Path:
    """A tiny VOC2012 folder: 12 JPEGs, cat = images 0-9, dog = images 2-11."""
    from PIL import Image

    (root / "JPEGImages").mkdir(parents=True)
    for index in range(12):
        Image.new("RGB", (20, 20)).save(root / "JPEGImages" / f"2008_{index:06d}.jpg")
    main_dir = root / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    for cls, members in (("cat", range(0, 10)), ("dog", range(2, 12))):
        lines = [f"2008_{i:06d} {' 1' if i in members else '-1'}" for i in range(12)]
        (main_dir / f"{cls}_trainval.txt").write_text("\n".join(lines) + "\n")
        (main_dir / f"{cls}_train.txt").write_text("ignored\n")
    return root
