"""Class-folder datasets: the layout TAO classification reads, and the one split rule.

Layout: ``<root>/{train,val,test}/<class>/<image>``. Both sources below use the same seeded
per-class split as NVIDIA's notebook (``prepare_voc.py``): shuffle each class's images and
cut at ``int(n*0.7)`` and ``int(n*0.8)`` (70% train, 10% val, 20% test). The notebook's
shuffle is unseeded; ours is seeded so a run is reproducible.

``tao-kfp prepare-data digits --out DIR`` writes scikit-learn's digits as PNGs (the local
demo's dataset); ``tao-kfp prepare-data voc --voc-root DIR --out DIR`` converts Pascal VOC
2012 the way the notebook does. The pipeline's prepare step calls :func:`convert_voc`.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

SPLITS = ("train", "val", "test")
DEFAULT_SEED = 42
# Written last into a prepared dataset; its presence means the folder is complete.
COMPLETE_MARKER = ".tao-kfp-complete"
# What TAO's Keras loader reads (train, val, evaluate, calibration_tensorfile):
# flow_from_directory -> keras_preprocessing 1.1.2 DirectoryIterator. Class folders are every
# entry of the split root that is a directory, hidden ones included, in sorted order
# (image/directory_iterator.py:113-117). Inside a class folder, every file whose lower-cased
# name ends with a white-listed extension (image/iterator.py:34), found by
# os.walk(followlinks=False): subfolders are read, hidden ones too, but not through symlinks
# (image/utils.py:159-182; follow_links defaults to False, directory_iterator.py:90).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
# TAO's inference -d reads only these (5.0 makenet/scripts/inference.py:298-303).
INFERENCE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def split_counts(n: int) -> Tuple[int, int, int]:
    """Returns (train, val, test) sizes for ``n`` images: cut points int(n*0.7), int(n*0.8)."""
    first, second = int(n * 0.7), int(n * 0.8)
    return first, second - first, n - second


def split_items(items: Sequence[str], seed: int = DEFAULT_SEED) -> Dict[str, List[str]]:
    """Splits one class's items 70/10/20 after a seeded shuffle (independent of input order)."""
    shuffled = sorted(items)
    random.Random(seed).shuffle(shuffled)
    first, second = int(len(shuffled) * 0.7), int(len(shuffled) * 0.8)
    return {"train": shuffled[:first], "val": shuffled[first:second], "test": shuffled[second:]}


def class_folders(split_dir: str | Path) -> List[str]:
    """The class folder names Keras finds in a split, hidden ones included, sorted."""
    split_dir = Path(split_dir)
    return [name for name in sorted(os.listdir(split_dir)) if (split_dir / name).is_dir()]


def list_images(folder: Path) -> List[Path]:
    """The images Keras reads in one class folder, subfolders included, in Keras' order."""
    return [
        Path(root) / name
        for root, _dirs, files in sorted(os.walk(folder, followlinks=False), key=lambda w: w[0])
        for name in sorted(files)
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]


def scan_class_folders(root: str | Path) -> Dict[str, Dict[str, List[Path]]]:
    """Returns ``{split: {class: [images]}}`` for the splits present under ``root``.

    Exactly what TAO's loader reads (see IMAGE_EXTENSIONS), hidden class folders included:
    step 1 refuses those, since Keras would train them as extra classes.
    """
    root = Path(root)
    layout: Dict[str, Dict[str, List[Path]]] = {}
    for split in SPLITS:
        split_dir = root / split
        if split_dir.is_dir():
            layout[split] = {
                name: list_images(split_dir / name) for name in class_folders(split_dir)
            }
    return layout


def voc_class_lists(voc_root: str | Path) -> Dict[str, List[str]]:
    """Reads ``ImageSets/Main/<class>_trainval.txt``: the image ids marked ``1`` per class."""
    main = Path(voc_root) / "ImageSets" / "Main"
    classes: Dict[str, List[str]] = {}
    for listing in sorted(main.glob("*_trainval.txt")):
        name = listing.name[: -len("_trainval.txt")]
        ids = []
        for line in listing.read_text().splitlines():
            tokens = line.split()
            if len(tokens) >= 2 and tokens[1] == "1":
                ids.append(tokens[0])
        classes[name] = ids
    return classes


def _place(src: Path, dst: Path) -> None:
    """Hard-links when possible (same volume, no extra space), else copies."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _finish(tmp: Path, out: Path) -> None:
    (tmp / COMPLETE_MARKER).write_text("ok\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def is_complete(out: str | Path) -> bool:
    """True when ``out`` holds a dataset this module finished writing."""
    return (Path(out) / COMPLETE_MARKER).is_file()


def convert_voc(voc_root: str | Path, out: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Converts Pascal VOC 2012 into class folders split 70/10/20, as NVIDIA's notebook does.

    Every image listed with ``1`` in ``<class>_trainval.txt`` goes to that class (an image can
    land in several classes). Writes into a temporary folder and renames it, so an
    interrupted run never leaves a half-written dataset behind.

    Args:
        voc_root: Folder with ``JPEGImages/`` and ``ImageSets/Main/`` (``VOCdevkit/VOC2012``).
        out: Destination root; ``train/``, ``val/`` and ``test/`` are created inside.
        seed: Shuffle seed of the split.

    Returns:
        ``out`` as a Path.
    """
    voc_root, out = Path(voc_root), Path(out)
    classes = voc_class_lists(voc_root)
    if not classes:
        raise ValueError(
            f"no ImageSets/Main/*_trainval.txt under {voc_root}: point dataset_path at the "
            "VOC2012 folder (the one holding JPEGImages/ and ImageSets/)."
        )
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, ids in classes.items():
        for split, chosen in split_items(ids, seed).items():
            for image_id in chosen:
                src = voc_root / "JPEGImages" / f"{image_id}.jpg"
                _place(src, tmp / split / name / src.name)
    _finish(tmp, out)
    return out


def write_digits(out: str | Path, size: int = 32, seed: int = DEFAULT_SEED) -> Path:
    """Writes scikit-learn's 8x8 digits (1,797 images, 10 classes) as RGB PNG class folders.

    Args:
        out: Destination root.
        size: Side of the written square images in pixels (TAO needs >= 16).
        seed: Shuffle seed of the split.

    Returns:
        ``out`` as a Path.
    """
    # Lazy imports: scikit-learn and numpy come with the `cpu` extra only.
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    if size < 16:
        raise ValueError(f"--size must be >= 16 (TAO's minimum image side), got {size}")
    out = Path(out)
    digits = load_digits()
    by_class: Dict[str, List[int]] = {}
    for index, target in enumerate(digits.target):
        by_class.setdefault(str(int(target)), []).append(index)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, indices in by_class.items():
        keyed = {f"{i:04d}": i for i in indices}
        for split, chosen in split_items(list(keyed), seed).items():
            folder = tmp / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for key in chosen:
                pixels = (digits.images[keyed[key]] * (255.0 / 16.0)).astype(np.uint8)
                image = Image.fromarray(pixels, mode="L").resize((size, size), Image.BILINEAR)
                image.convert("RGB").save(folder / f"digit_{key}.png")
    _finish(tmp, out)
    return out


def add_arguments(parser) -> None:
    """Registers ``prepare-data digits|voc`` and their flags."""
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    digits = sub.add_parser("digits", help="scikit-learn digits as PNG class folders")
    digits.add_argument("--out", required=True, help="destination folder")
    digits.add_argument("--size", type=int, default=32, help="image side in pixels (>= 16)")
    digits.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split shuffle seed")
    voc = sub.add_parser("voc", help="convert Pascal VOC 2012 to class folders")
    voc.add_argument("--voc-root", required=True, help="the VOC2012 folder")
    voc.add_argument("--out", required=True, help="destination folder")
    voc.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split shuffle seed")


def run(args) -> int:
    """Writes the requested dataset and prints per-split image counts."""
    if args.source == "digits":
        out = write_digits(args.out, size=args.size, seed=args.seed)
    else:
        out = convert_voc(args.voc_root, args.out, seed=args.seed)
    layout = scan_class_folders(out)
    for split, classes in layout.items():
        total = sum(len(images) for images in classes.values())
        print(f"{split}: {total} images in {len(classes)} classes")
    print(f"wrote {out}")
    return 0
