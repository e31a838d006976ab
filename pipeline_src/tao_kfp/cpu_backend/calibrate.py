"""``calibration_tensorfile``: INT8 calibration batches for ``export --cal_data_file``.

Takes ``-m`` batches of ``batch_size_per_gpu`` images from the shuffled train (or, with
``--use_validation_set``, val) split, preprocessed exactly as at inference (center crop when
``enable_center_crop``; no random augmentation), and writes them as a TensorFile: here a
float32 ``.npy`` array shaped ``(batches, batch, C, H, W)``. Fails if the output exists.
"""

from __future__ import annotations

import argparse
import random

from tao_kfp.cpu_backend.common import BackendError, log, progress_bar, refuse_existing, say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO calibration_tensorfile flags."""
    parser.add_argument(
        "-e", "--experiment_spec", "--experiment_spec_file", required=True, help="spec"
    )
    parser.add_argument("-o", "--output", required=True, help="TensorFile to write")
    parser.add_argument("-m", "--max_batches", type=int, default=1, help="batches to write")
    parser.add_argument("--use_validation_set", action="store_true", help="use val_dataset_path")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")


def run(args: argparse.Namespace) -> int:
    """Writes the TensorFile; returns 0."""
    import numpy as np

    from tao_kfp.cpu_backend.common import load_experiment_spec
    from tao_kfp.cpu_backend.data import ImageFormat, find_images, load_images, write_tensorfile

    # Loaded with the train_val schema (tao_tensorflow1_backend 5.0
    # makenet/scripts/calibration_tensorfile.py:88; spec_handling/spec_loader.py:107, 127).
    spec = load_experiment_spec(args.experiment_spec, task="train")
    output = refuse_existing(args.output, "-o")
    tc = spec.train_config
    field = "val_dataset_path" if args.use_validation_set else "train_dataset_path"
    root = getattr(tc, field)
    if not root:
        raise BackendError(f"train_config.{field} is not set in {args.experiment_spec}")
    batch_size = tc.batch_size_per_gpu
    if batch_size < 1:
        raise BackendError("train_config.batch_size_per_gpu must be > 0")
    names, paths, _labels = find_images(root)
    say(f"Found {len(paths)} images belonging to {len(names)} classes.")
    available = len(paths) // batch_size
    if args.max_batches < 1 or args.max_batches > available:
        raise BackendError(
            f"-m {args.max_batches}: must be between 1 and {available} "
            f"(= {len(paths)} images // batch_size_per_gpu {batch_size})"
        )
    random.Random(tc.random_seed).shuffle(paths)
    image_format = ImageFormat.from_spec(spec)
    crop = "center" if tc.enable_center_crop else "none"
    batches = []
    for index in range(args.max_batches):
        chunk = paths[index * batch_size : (index + 1) * batch_size]
        batches.append(image_format.preprocess(load_images(chunk, image_format, crop)).numpy())
    write_tensorfile(output, np.stack(batches))
    say(progress_bar("Writing calibration tensorfile", args.max_batches, args.max_batches))
    log("Calibration tensorfile written.")
    return 0
