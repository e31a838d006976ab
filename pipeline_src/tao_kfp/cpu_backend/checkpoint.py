"""Model files (``.tlt``): a torch file holding the arch config, weights and class map.

TAO 3.x encrypts ``.tlt`` files with the model key (``-k``). This backend does not encrypt; it
stores a salted PBKDF2 digest of the key so loading with another key fails as it does in TAO.
The key itself is never stored or printed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tao_kfp.cpu_backend.common import BackendError

FORMAT = "tao-kfp-cpu-checkpoint/1"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_KDF_ROUNDS = 20_000
# Metadata key under which an exported ONNX model carries its key check (export writes it,
# convert reads it).
KEY_METADATA = "tao_kfp.key_check"


def key_digest(key: str, salt: bytes) -> bytes:
    """PBKDF2-SHA256 of the key; slow enough that a stored digest does not leak short keys."""
    return hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, _KDF_ROUNDS)


def new_key_check(key: str) -> dict:
    """A ``{"salt", "digest"}`` record for ``key``, stored in model files instead of the key."""
    salt = os.urandom(16)
    return {"salt": salt.hex(), "digest": key_digest(key, salt).hex()}


def key_matches(record: dict, key: str) -> bool:
    """Whether ``key`` is the key the record was made from."""
    expected = bytes.fromhex(record["digest"])
    return hmac.compare_digest(expected, key_digest(key, bytes.fromhex(record["salt"])))


@dataclass
class Checkpoint:
    """A loaded model file."""

    path: Path
    arch: dict
    state_dict: dict
    classmap: dict
    epoch: Optional[int] = None

    @property
    def class_names(self) -> list[str]:
        """Class names ordered by class index."""
        return [name for name, _ in sorted(self.classmap.items(), key=lambda item: item[1])]

    def build_model(self) -> Any:
        """The network with the stored architecture and weights, in eval mode."""
        from tao_kfp.cpu_backend.model import ResNet

        model = ResNet(self.arch)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(
    path: str | Path,
    *,
    model: Any,
    classmap: dict,
    key: str,
    epoch: Optional[int] = None,
) -> None:
    """Writes a model file atomically (a reader never sees half a checkpoint)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "arch": model.arch,
        "state_dict": {k: v.detach().contiguous() for k, v in model.state_dict().items()},
        "classmap": dict(classmap),
        "key_check": new_key_check(key),
        "epoch": epoch,
    }
    partial = path.with_name(f".{path.name}.partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(path: str | Path, key: str) -> Checkpoint:
    """Reads a model file written by this backend, checking the key.

    Raises:
        BackendError: the file is missing, is not a CPU-backend model (e.g. a Keras HDF5 file),
            or was written with another key.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise BackendError(f"model file {path} not found")
    with open(path, "rb") as handle:
        magic = handle.read(len(_HDF5_MAGIC))
    if magic == _HDF5_MAGIC:
        raise BackendError(
            f"{path} is a Keras HDF5 model (an NGC pretrained model or a TAO 5.0 checkpoint). "
            "The CPU backend only reads models it wrote itself: for local runs train from "
            "scratch (empty pretrained_model_path) or start from a CPU-backend .tlt."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for foreign files
        raise BackendError(
            f"{path} is not a CPU-backend model file ({type(error).__name__}); "
            "pass a .tlt written by this backend's train or prune"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BackendError(f"{path} is not a CPU-backend model file (expected format {FORMAT})")
    if not key_matches(payload["key_check"], key):
        raise BackendError(
            f"cannot load {path}: wrong key. The model was saved with a different -k; "
            "pass the key it was trained with."
        )
    return Checkpoint(
        path=path,
        arch=payload["arch"],
        state_dict=payload["state_dict"],
        classmap=payload["classmap"],
        epoch=payload.get("epoch"),
    )
