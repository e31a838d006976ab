"""Tiny datasets, spec files and an ONNX model for the tests that run NVIDIA's TAO code."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict

import yaml
from PIL import Image

CLASSES = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
SPLITS = {"train": 10, "val": 4, "test": 4}
IMG_SIZE = 32


def make_dataset(root: Path, seed: int = 0) -> Path:
    """train/ val/ test/ with 3 colour classes of 32 px PNGs (10/4/4 per class)."""
    rng = random.Random(seed)
    for split, count in SPLITS.items():
        for name, rgb in CLASSES.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                colour = tuple(max(0, min(255, v + rng.randint(-40, 40))) for v in rgb)
                Image.new("RGB", (IMG_SIZE, IMG_SIZE), colour).save(folder / f"{index}.png")
    return root


def write_spec(path: Path, spec: Dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def tiny_onnx(path: Path, input_name: str = "input", output_name: str = "output") -> Path:
    """A 1x3x32x32 -> 1x3 model (Flatten + MatMul) standing for an exported classifier."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor(
        "w", TensorProto.FLOAT, [3 * IMG_SIZE * IMG_SIZE, 3], [0.0] * (3 * IMG_SIZE * IMG_SIZE * 3)
    )
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [input_name], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], [output_name]),
        ],
        "classifier",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, IMG_SIZE, IMG_SIZE])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, 3])],
        [weights],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph), str(path))
    return path
