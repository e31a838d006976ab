"""Class-folder datasets loaded into memory, TAO/Keras preprocessing, and the TensorFile.

Like Keras ``flow_from_directory``: one sub-folder per class, class index = position of the
folder name in sorted order, images found recursively inside each class folder. Images are
decoded once with Pillow (any mode, converted to RGB or L), resized, and kept as a uint8
tensor; preprocessing (caffe/tf/torch) is applied per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tao_kfp.cpu_backend.common import BackendError, input_shape, say
from tao_kfp.dataset import IMAGE_EXTENSIONS as KERAS_EXTENSIONS  # noqa: F401 (re-exported)
from tao_kfp.dataset import (
    INFERENCE_EXTENSIONS,  # noqa: F401 (re-exported)
    list_images,
)

# Crops take the target size out of an image first resized to target / 0.875 (Inception style).
CROP_RATIO = 0.875
# Keras imagenet_utils defaults: caffe means (BGR order) and torch mean/std (RGB order).
CAFFE_MEAN = {"b": 103.939, "g": 116.779, "r": 123.68, "l": 117.3786}
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageFormat:
    """How images become network inputs: size, channels, resize method, preprocess mode."""

    channels: int
    height: int
    width: int
    mode: str = "caffe"
    image_mean: dict = field(default_factory=dict)
    bicubic: bool = False

    @classmethod
    def from_spec(cls, spec: Any) -> ImageFormat:
        """Reads ``model_config.input_image_size`` and the train_config preprocessing fields."""
        channels, height, width = input_shape(spec)
        mode = spec.train_config.preprocess_mode or "caffe"
        if mode not in ("caffe", "tf", "torch"):
            raise BackendError(
                f"train_config.preprocess_mode must be caffe, tf or torch (got {mode!r})"
            )
        return cls(
            channels=channels,
            height=height,
            width=width,
            mode=mode,
            image_mean=dict(spec.train_config.image_mean),
            bicubic=spec.model_config.resize_interpolation_method == 1,
        )

    def source_size(self, crop: str) -> tuple[int, int]:
        """``(height, width)`` images are stored at: larger than the target when cropping."""
        if crop == "none":
            return self.height, self.width
        return math.ceil(self.height / CROP_RATIO), math.ceil(self.width / CROP_RATIO)

    def load(self, path: str | Path, crop: str = "none") -> np.ndarray:
        """Decodes one image to a uint8 ``(C, H, W)`` array.

        Args:
            path: image file.
            crop: ``none`` (resize to the target), ``center`` (resize larger, center crop) or
                ``random`` (resize larger; the random crop is taken per batch while training).
        """
        from PIL import Image

        resample = Image.BICUBIC if self.bicubic else Image.BILINEAR
        try:
            with Image.open(path) as image:
                if image.mode == "P" and "transparency" in image.info:
                    image = image.convert("RGBA")  # Pillow warns on palette -> RGB directly
                image = image.convert("RGB" if self.channels == 3 else "L")
                height, width = self.source_size(crop)
                image = image.resize((width, height), resample)
        except OSError as error:
            raise BackendError(f"cannot read image {path}: {error}") from None
        array = np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy warns)
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        if crop == "center":
            array = center_crop(array, self.height, self.width)
        return np.ascontiguousarray(array)

    def preprocess(self, images: Any) -> Any:
        """Keras ``preprocess_input`` on a uint8/float ``(N, C, H, W)`` tensor of RGB or L."""
        import torch

        x = torch.as_tensor(images).float()
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            x = x / 255.0
            if self.channels == 3:
                mean = torch.tensor(TORCH_MEAN).view(1, 3, 1, 1)
                std = torch.tensor(TORCH_STD).view(1, 3, 1, 1)
            else:
                mean = torch.tensor(sum(TORCH_MEAN) / 3).view(1, 1, 1, 1)
                std = torch.tensor(sum(TORCH_STD) / 3).view(1, 1, 1, 1)
            return (x - mean) / std
        # caffe: RGB -> BGR, subtract the per-channel mean, no scaling.
        means = {**CAFFE_MEAN, **self.image_mean}
        if self.channels == 3:
            x = x.flip(1)
            mean = torch.tensor([means["b"], means["g"], means["r"]]).view(1, 3, 1, 1)
        else:
            mean = torch.tensor(means["l"]).view(1, 1, 1, 1)
        return x - mean


def center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height x width`` window of a ``(C, H, W)`` array."""
    top = (array.shape[1] - height) // 2
    left = (array.shape[2] - width) // 2
    return array[:, top : top + height, left : left + width]


@dataclass
class ImageSet:
    """Images of one split in memory: uint8 ``(N, C, H, W)``, labels and class names."""

    images: Any
    labels: Any
    class_names: list[str]
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


def list_class_folders(root: str | Path) -> list[str]:
    """Sorted class folder names under ``root`` (Keras class order)."""
    root = Path(root)
    if not root.is_dir():
        raise BackendError(
            f"dataset folder {root} not found; expected one sub-folder per class in it"
        )
    from tao_kfp.dataset import class_folders

    return class_folders(root)


def find_images(
    root: str | Path, class_names: Optional[list[str]] = None
) -> tuple[list[str], list[str], list[int]]:
    """Lists a class-folder split: ``(class names, image paths, labels)``.

    Args:
        root: split folder with one sub-folder per class.
        class_names: fixed class order (e.g. from a class map); default is sorted folder names.
    """
    root = Path(root)
    names = class_names if class_names is not None else list_class_folders(root)
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            raise BackendError(f"class folder {folder} not found (class {name!r} of the model)")
        for image in list_images(folder):  # the Keras rule, as TAO reads the folder
            paths.append(str(image))
            labels.append(index)
    return names, paths, labels


def load_images(paths: list[str], image_format: ImageFormat, crop: str = "none") -> Any:
    """Decodes images into one uint8 ``(N, C, H, W)`` tensor (larger when ``crop="random"``)."""
    import torch

    height, width = (image_format.height, image_format.width)
    if crop == "random":
        height, width = image_format.source_size(crop)
    images = torch.empty((len(paths), image_format.channels, height, width), dtype=torch.uint8)
    for i, path in enumerate(paths):
        images[i] = torch.from_numpy(image_format.load(path, crop))
    return images


def load_image_set(
    root: str | Path,
    image_format: ImageFormat,
    *,
    crop: str = "none",
    class_names: Optional[list[str]] = None,
) -> ImageSet:
    """Loads a split into memory and prints Keras' ``Found N images belonging to K classes.``."""
    import torch

    names, paths, labels = find_images(root, class_names)
    say(f"Found {len(paths)} images belonging to {len(names)} classes.")
    images = load_images(paths, image_format, crop)
    return ImageSet(images, torch.tensor(labels, dtype=torch.long), names, paths)


# ---------------------------------------------------------------------------------------------
# TensorFile: calibration batches (TAO uses its own container; this one is a .npy array).
# ---------------------------------------------------------------------------------------------


def write_tensorfile(path: str | Path, batches: np.ndarray) -> None:
    """Writes float32 batches shaped ``(n_batches, batch, C, H, W)`` as a .npy array.

    A file object is used so numpy does not append ``.npy`` to the name TAO was given.
    """
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(batches, dtype=np.float32), allow_pickle=False)


def read_tensorfile(path: str | Path) -> np.ndarray:
    """Reads a TensorFile written by ``calibration_tensorfile``."""
    try:
        with open(path, "rb") as handle:
            batches = np.load(handle, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise BackendError(
            f"cannot read calibration TensorFile {path}: {error}; "
            "create it with calibration_tensorfile"
        ) from None
    if batches.ndim != 5:
        raise BackendError(
            f"{path}: expected batches shaped (n_batches, batch, C, H, W), got {batches.shape}"
        )
    return batches


def calibration_batches(path: str | Path, n_batches: int, batch_size: int) -> list:
    """The batches TAO's TensorfileCalibrator feeds TensorRT, failing where it fails.

    It reads ``--batches`` batches in order and keeps the first ``--batch_size`` images of
    each. Past the last stored batch ``TensorFile.read`` returns None and
    ``np.array(None).shape[0]`` raises IndexError; a stored batch smaller than
    ``--batch_size`` raises ValueError (tao_deploy engine/tensorfile.py:120-140,
    engine/tensorfile_calibrator.py:86-104; tao_tensorflow1_backend 5.0
    common/export/tensorfile_calibrator.py:91-109).
    """
    stored = read_tensorfile(path)
    batches = []
    for index in range(n_batches):
        if index >= len(stored):
            raise BackendError(
                f"IndexError: tuple index out of range: --batches {n_batches} asks for batch "
                f"{index + 1}, but the TensorFile {path} holds {len(stored)}. Pass the "
                "--batches it was written with (calibration_tensorfile -m)."
            )
        if stored.shape[1] < batch_size:
            raise BackendError(
                f"ValueError: Batch size yielded from data source {stored.shape[1]} < requested "
                f"batch size from calibrator {batch_size}. Pass the --batch_size the TensorFile "
                "was written with (train_config.batch_size_per_gpu)."
            )
        batches.append(stored[index][:batch_size])
    return batches
