"""``inference``: TAO ``classification inference`` on CPU (one image or a folder).

``-d`` classifies the folder's .jpg/.jpeg/.png files and writes ``result.csv`` (no header:
``<os.path.join(dir, file)>,<class name>,<max probability>``): TAO 3.x reads the top-level
files in sorted order and writes into the folder itself; TAO 5.0 walks sub-folders and writes
into ``-r`` when given (tao_tensorflow1_backend 5.0 makenet/scripts/inference.py:293-303).
``-e`` and ``-cm`` are required and the spec is validated (inference.py:64, 71-75, 205-207).

TAO 5.0 "exits 0 but failed": with ``-r``, no ``-i``/``-d`` (inference.py:187-192) or a folder
without such images (305-311) only writes FAILURE to ``<-r>/status.json`` and returns, so
the launcher prints ``Execution status: PASS``. Without ``-r`` the same cases end in a
NameError (``s_logger`` is unset): exit 1.
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
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-i", "--image", help="one image")
    source.add_argument("-d", "--image_dir", help="folder of images")
    parser.add_argument("-b", "--batch_size", type=int, default=1, help="images per batch")
    parser.add_argument("-cm", "--classmap", required=True, help="classmap.json written by train")
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
    tao5 = args.tao_version == "5"
    if not (args.image or args.image_dir):
        if not tao5:
            raise BackendError("inference needs -i <image> or -d <image folder>")
        return _tao5_failure(args, "Provide either image file or a directory of images.")
    use_all_cores()
    spec = load_experiment_spec(args.experiment_spec, task="inference")
    checkpoint = load_checkpoint(args.model, args.key)
    model = checkpoint.build_model()
    image_format = check_image_format(ImageFormat.from_spec(spec), checkpoint.arch)
    class_names = read_classmap(args.classmap)
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
    if tao5:  # os.walk, unsorted as TAO 5.0 lists them (inference.py:298-303)
        files = [
            os.path.relpath(os.path.join(root, name), image_dir)
            for root, _dirs, names in os.walk(image_dir)
            for name in names
            if os.path.splitext(name)[1].lower() in INFERENCE_EXTENSIONS
        ]
    else:
        files = sorted(
            name
            for name in os.listdir(image_dir)
            if name.lower().endswith(INFERENCE_EXTENSIONS)
            and os.path.isfile(os.path.join(image_dir, name))
        )
    result_dir = Path(args.results_dir) if args.results_dir else Path(image_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    result_path = result_dir / "result.csv"
    if not files:
        if tao5:
            result_path.write_text("")  # opened before the listing (inference.py:296)
            return _tao5_failure(
                args,
                "Image directory doesn't contain files with valid extensionsValid extensions "
                f"are {list(INFERENCE_EXTENSIONS)}",
            )
        raise BackendError(f"no .jpg/.jpeg/.png images directly inside {image_dir} (-d)")
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


def _tao5_failure(args: argparse.Namespace, message: str) -> int:
    """TAO 5.0's silent failure: FAILURE in ``<-r>/status.json``, exit 0; without -r, exit 1."""
    from tao_kfp.cpu_backend.common import write_status

    if not args.results_dir:
        raise BackendError("NameError: name 's_logger' is not defined (TAO 5.0 without -r)")
    write_status(args.results_dir, "FAILURE", message)
    return 0
