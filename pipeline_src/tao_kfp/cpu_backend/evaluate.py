"""``evaluate``: TAO's ``classification evaluate`` on CPU, printing TAO's exact layout.

As in TAO, the model is always ``eval_config.model_path`` and the data
``eval_config.eval_dataset_path``; ``-m``/``-i``/``-l``/``-b`` are accepted and ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

from tao_kfp.cpu_backend.common import BackendError, log, require_key_on_3x, say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO 3.x evaluate flags (plus 5.0's, accepted)."""
    parser.add_argument(
        "-e", "--experiment_spec_file", "--experiment_spec", required=True, help="spec"
    )
    parser.add_argument("-k", "--key", default="", help="model key")
    parser.add_argument("-cm", "--classmap", default=None, help="class map JSON (TAO 5.0)")
    parser.add_argument("-r", "--results_dir", default=None, help="ignored (TAO 5.0 status)")
    parser.add_argument("-m", "--model_path", default=None, help="ignored: eval_config wins")
    parser.add_argument("-i", "--image_dir", default=None, help="ignored")
    parser.add_argument("-l", "--label_dir", default=None, help="ignored")
    parser.add_argument("-b", "--batch_size", type=int, default=None, help="ignored")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")


def run(args: argparse.Namespace) -> int:
    """Evaluates ``eval_config.model_path`` on ``eval_config.eval_dataset_path``; returns 0."""
    from tao_kfp.cpu_backend.common import load_experiment_spec

    require_key_on_3x(args, "evaluate")
    spec = load_experiment_spec(args.experiment_spec_file, task="evaluate")
    if args.model_path and args.model_path != spec.eval_config.model_path:
        log(f"-m is ignored: evaluate uses eval_config.model_path ({spec.eval_config.model_path})")
    evaluate(spec, key=args.key, classmap_path=args.classmap)
    return 0


def evaluate(spec: Any, *, key: str, classmap_path: str | None = None) -> None:
    """Prints the model summary, loss, top-k accuracy, confusion matrix and sklearn report."""
    import numpy as np
    import torch
    from sklearn.metrics import classification_report, confusion_matrix

    from tao_kfp.cpu_backend.checkpoint import load_checkpoint
    from tao_kfp.cpu_backend.common import use_all_cores
    from tao_kfp.cpu_backend.data import ImageFormat, list_class_folders, load_image_set
    from tao_kfp.cpu_backend.model import format_summary, predict
    from tao_kfp.cpu_backend.train import crossentropy, read_classmap

    use_all_cores()
    ec = spec.eval_config
    checkpoint = load_checkpoint(ec.model_path, key)
    model = checkpoint.build_model()
    image_format = check_image_format(ImageFormat.from_spec(spec), checkpoint.arch)
    class_names = read_classmap(classmap_path) if classmap_path else checkpoint.class_names
    extra = sorted(set(list_class_folders(ec.eval_dataset_path)) - set(class_names))
    if extra:
        raise BackendError(
            f"{ec.eval_dataset_path} has class folders the model does not know: {extra} "
            f"(model classes: {class_names})"
        )
    say(format_summary(model))
    crop = "center" if ec.enable_center_crop else "none"
    eval_set = load_image_set(
        ec.eval_dataset_path, image_format, crop=crop, class_names=class_names
    )
    log(f"Processing dataset (evaluation): {ec.eval_dataset_path}")
    probabilities = predict(model, eval_set.images, image_format.preprocess, ec.batch_size or 256)
    labels = eval_set.labels
    num_classes = len(class_names)
    targets = torch.nn.functional.one_hot(labels, num_classes).float()
    loss = float(crossentropy(probabilities, targets)) if len(labels) else float("nan")
    k = min(ec.top_k or 5, num_classes)
    top_k = probabilities.topk(k, dim=1).indices
    top_k_accuracy = float((top_k == labels.view(-1, 1)).any(dim=1).float().mean())
    say(f"Evaluation Loss: {loss}")
    say(f"Evaluation Top K accuracy: {top_k_accuracy}")

    # TAO runs a second pass over the data for the per-class report (hence the second Found).
    say(f"Found {len(eval_set)} images belonging to {num_classes} classes.")
    log("Calculating per-class P/R and confusion matrix. It may take a while...")
    y_true = labels.numpy()
    y_pred = probabilities.argmax(dim=1).numpy()
    indices = list(range(num_classes))
    say("Confusion Matrix")
    say(str(confusion_matrix(y_true, y_pred, labels=indices).astype(np.int64)))
    say("Classification Report")
    say(
        classification_report(
            y_true, y_pred, labels=indices, target_names=class_names, zero_division=0
        )
    )


def check_image_format(image_format: Any, arch: dict) -> Any:
    """Fails when the spec's channel count differs from the model's input."""
    channels = arch["input_shape"][0]
    if image_format.channels != channels:
        raise BackendError(
            f"model_config.input_image_size has {image_format.channels} channels but the model "
            f"was trained on {channels}; use the training spec"
        )
    return image_format
