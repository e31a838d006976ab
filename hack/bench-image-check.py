#!/usr/bin/env python3
"""Measures the validate step's image check (every image decoded) and projects it to 100,000 images.

Writes N synthetic photos (JPEG, 500x375 like Pascal VOC) and N digits-like PNGs (32x32) into a
temporary folder, times ``tao_kfp.steps.validate.check_images`` on them with as many threads as
cores given (default 2), and prints images/s and the projected cost for a 100,000-image dataset
next to what one training epoch spends on the same images before any GPU work: decoding each
in full and resizing it to 224x224.

Usage: .venv/bin/python hack/bench-image-check.py [--images 2000] [--cores 2]
Figures measured on a shared machine are inflated by the other load on it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tao_kfp.steps.validate import check_images

DATASET = 100_000


def write_images(folder: Path, count: int, size: tuple, suffix: str) -> list:
    rng = np.random.default_rng(0)
    # Smooth gradients plus noise: compresses like a photo, not like pure noise or a flat image.
    base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
    paths = []
    for index in range(count):
        noise = rng.normal(0, 25, base.shape)
        pixels = np.clip(np.roll(base, index, axis=1) + noise, 0, 255).astype(np.uint8)
        path = folder / f"{index:06d}{suffix}"
        Image.fromarray(pixels).save(path, **({"quality": 90} if suffix == ".jpg" else {}))
        paths.append(path)
    return paths


def time_check(paths: list, cores: int) -> float:
    started = time.perf_counter()
    problems = check_images(paths, workers=cores)
    seconds = time.perf_counter() - started
    assert not problems, problems[:3]
    return len(paths) / seconds


def _load_for_training(path: Path) -> None:
    with Image.open(path) as image:
        image.convert("RGB").resize((224, 224), Image.BILINEAR)


def time_epoch_loading(paths: list, cores: int) -> float:
    """Images/s of what every training epoch does per image: full decode and resize to 224."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cores) as pool:
        list(pool.map(_load_for_training, paths, chunksize=64))
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per kind")
    parser.add_argument("--cores", type=int, default=2, help="threads (= cores) for the check")
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"writing {args.images} JPEG 500x375 and {args.images} PNG 32x32 images ...")
        kinds = {
            "JPEG 500x375 (VOC-like photo)": write_images(root, args.images, (500, 375), ".jpg"),
            "PNG 32x32 (digits demo)": write_images(root, args.images, (32, 32), ".png"),
        }
        rates = {
            name: (time_check(paths, args.cores), time_epoch_loading(paths, args.cores))
            for name, paths in kinds.items()
        }
    print(f"\nimage check on {args.cores} cores, every image decoded; projected to {DATASET:,}:")
    for name, (check, epoch) in rates.items():
        print(
            f"  {name:<30} {check:7.0f} images/s -> {DATASET / check:5.0f} s "
            f"(one epoch's decode+resize alone: {epoch:5.0f} images/s -> "
            f"{DATASET / epoch:5.0f} s; check = {100 * epoch / check:.0f} % of it)"
        )
    print(
        "Every training epoch decodes and resizes every image (TAO's Keras loader does it on "
        "the CPU), so the check costs less than the input pipeline of one epoch on as many "
        "cores, before any GPU work. Measured on a machine shared with other jobs."
    )


if __name__ == "__main__":
    main()
