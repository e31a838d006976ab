"""``inference``: TAO 3.x ``classification inference`` on CPU (one image or a folder).

``-d`` classifies the folder's top-level .jpg/.jpeg/.png files in sorted order and writes
``result.csv`` (no header: ``<os.path.join(dir, file)>,<class name>,<max probability>``) into
the folder itself, as TAO 3.x does (or into ``-r`` when given, as TAO 5.0 does).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from tao_kfp.cpu_backend.common import BackendError, log, require_key_on_3x, say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO 3.x inference flags."""
    parser.add_argument("-m", "--model", "--model_path", required=True, help="model file")
    parser.add_argument("-k", "--key", default="", help="model key")
    parser.add_argument(
        "-e", "--experiment_spec", "--experiment_spec_file", required=True, help="spec"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-i", "--image", help="one image")
    source.add_argument("-d", "--image_dir", help="folder of images (top level only)")
    parser.add_argument("-b", "--batch_size", type=int, default=1, help="images per batch")
    parser.add_argument("-cm", "--classmap", default=None, help="classmap.json written by train")
    parser.add_argument("-r", "--results_dir", default=None, help="where result.csv goes (5.0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")


def run(args: argparse.Namespace) -> int:
    """Classifies ``-i`` or every image of ``-d``; returns 0."""
    import numpy as np
    import torch

    from tao_kfp.cpu_backend.checkpoint import load_checkpoint
    from tao_kfp.cpu_backend.common import load_experiment_spec, use_all_cores
    from tao_kfp.cpu_backend.data import INFERENCE_EXTENSIONS, ImageFormat
    from tao_kfp.cpu_backend.evaluate import check_image_format
    from tao_kfp.cpu_backend.model import predict
    from tao_kfp.cpu_backend.train import read_classmap

    require_key_on_3x(args, "inference")
    use_all_cores()
    spec = load_experiment_spec(args.experiment_spec)
    checkpoint = load_checkpoint(args.model, args.key)
    model = checkpoint.build_model()
    image_format = check_image_format(ImageFormat.from_spec(spec), checkpoint.arch)
    class_names = read_classmap(args.classmap) if args.classmap else checkpoint.class_names
    if len(class_names) != checkpoint.arch["num_classes"]:
        raise BackendError(
            f"class map has {len(class_names)} classes but the model predicts "
            f"{checkpoint.arch['num_classes']}"
        )
    crop = "center" if spec.eval_config.enable_center_crop else "none"
    batch_size = max(args.batch_size, 1)

    if args.image:
        image = torch.from_numpy(image_format.load(args.image, crop))[None]
        probabilities = predict(model, image, image_format.preprocess).numpy().astype(np.float32)
        index = int(probabilities.argmax())
        say(f"Current predictions: {probabilities}")
        say(f"Class label = {index}")
        say(f"Class name = {class_names[index]}")
        return 0

    image_dir = args.image_dir
    if not os.path.isdir(image_dir):
        raise BackendError(f"image folder {image_dir} not found (-d)")
    files = sorted(
        name
        for name in os.listdir(image_dir)
        if name.lower().endswith(INFERENCE_EXTENSIONS)
        and os.path.isfile(os.path.join(image_dir, name))
    )
    if not files:
        raise BackendError(f"no .jpg/.jpeg/.png images directly inside {image_dir} (-d)")
    result_dir = Path(args.results_dir) if args.results_dir else Path(image_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    result_path = result_dir / "result.csv"
    with open(result_path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            paths = [os.path.join(image_dir, name) for name in batch]
            images = torch.stack([torch.from_numpy(image_format.load(p, crop)) for p in paths])
            probabilities = predict(model, images, image_format.preprocess, batch_size).numpy()
            for path, row in zip(paths, probabilities.astype(np.float32)):
                writer.writerow([path, class_names[int(row.argmax())], str(row.max())])
    log(f"Inference complete. Result is saved at {result_path}")
    return 0
