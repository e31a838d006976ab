"""Helpers for the CPU backend tests: the digits dataset, the test spec, an in-process CLI."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

KEY = "test-model-key"
CLASSES = 5  # digits 0-4
PER_CLASS = 100  # 70 train, 10 val, 20 test per class
EPOCHS = 5

SPEC_TEMPLATE = """
model_config {{
  arch: "resnet"
  n_layers: 10
  use_batch_norm: true
  all_projections: true
  freeze_blocks: 0
  input_image_size: "3,16,16"
}}
train_config {{
  train_dataset_path: "{root}/train"
  val_dataset_path: "{root}/val"
  pretrained_model_path: "{pretrained}"
  optimizer {{ sgd {{ lr: 0.01 momentum: 0.9 }} }}
  batch_size_per_gpu: 32
  n_epochs: {epochs}
  n_workers: 2
  preprocess_mode: "caffe"
  enable_random_crop: true
  enable_center_crop: true
  disable_horizontal_flip: true
  label_smoothing: 0.05
  mixup_alpha: 0.1
  random_seed: 42
  reg_config {{ type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }}
  lr_config {{ cosine {{ learning_rate: 0.05 min_lr_ratio: 0.01 soft_start: 0.1 }} }}
}}
eval_config {{
  eval_dataset_path: "{root}/test"
  model_path: "{model}"
  top_k: 2
  batch_size: 64
  n_workers: 2
  enable_center_crop: true
}}
"""


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Runs ``tao-kfp-cpu`` in-process; returns (exit code, stdout, stderr)."""
    from tao_kfp.cpu_backend.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def write_digits(root: Path, classes: int = CLASSES, per_class: int = PER_CLASS) -> Path:
    """sklearn digits as 16x16 images in train/val/test class folders (70/10/20 split).

    Files vary in mode (L, RGB, RGBA, P) to exercise the conversion to the spec's channels.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    modes = ("L", "RGB", "RGBA", "P")
    for label in range(classes):
        indices = np.flatnonzero(digits.target == label)[:per_class]
        cut1, cut2 = int(len(indices) * 0.7), int(len(indices) * 0.8)
        splits = {"train": indices[:cut1], "val": indices[cut1:cut2], "test": indices[cut2:]}
        for split, chosen in splits.items():
            folder = root / split / f"digit_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for n, index in enumerate(chosen):
                pixels = (digits.images[index] * 255 / 16).astype(np.uint8)
                image = Image.fromarray(pixels).resize((16, 16), Image.BILINEAR)
                image.convert(modes[n % len(modes)]).save(folder / f"{index:04d}.png")
    return root


def write_spec(path: Path, root: Path, *, model: str = "", pretrained: str = "", epochs=EPOCHS):
    """Writes the test spec (protobuf text) and returns its path."""
    text = SPEC_TEMPLATE.format(root=root, model=model, pretrained=pretrained, epochs=epochs)
    path.write_text(text)
    return path
