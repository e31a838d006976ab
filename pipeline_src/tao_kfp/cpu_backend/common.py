"""Helpers shared by the CPU backend's subcommands: TAO-style logging, errors, spec access."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

MAIN_LOGGER = "__main__"
# magnet_prune's logger: 3.x iva (tao-output-samples.md 2), 5.0 nvidia_tao_tf1.
PRUNE_LOGGERS = {"3": "iva.common.magnet_prune", "5": "nvidia_tao_tf1.cv.common.magnet_prune"}
PRUNE_LOGGER = "magnet_prune"  # log() names it for the version played
_PLAYING = {"version": "3"}


def play_tao_version(version: str) -> None:
    """Sets the TAO version whose log prefix log() writes."""
    _PLAYING["version"] = version


def playing_tao_version() -> str:
    """The TAO version the backend plays in this process ("3" or "5")."""
    return _PLAYING["version"]


# The TAO major versions the backend can play (``tao-kfp-cpu --tao-version``), and what each
# writes for a checkpoint: 3.x encrypted .tlt, 5.0 Keras .hdf5 (docs/tao-contract.md).
TAO_VERSIONS = ("3", "5")
CHECKPOINT_EXTENSION = {"3": "tlt", "5": "hdf5"}


def require_key_on_3x(args: Any, task: str) -> None:
    """TAO 3.x evaluate and inference declare ``-k`` required (docs/tao-contract.md)."""
    if getattr(args, "tao_version", "3") == "3" and not args.key:
        raise BackendError(
            f"TAO 3.x {task} requires -k/--key (the model key the model was saved with); "
            "TAO 5.x does not."
        )


class BackendError(Exception):
    """A failure the user can fix; the CLI prints the message and exits 1."""


def log(message: str, *, name: str = MAIN_LOGGER, level: str = "INFO") -> None:
    """Prints one TAO log line with the prefix of the version played.

    3.x: ``YYYY-MM-DD HH:MM:SS,mmm [INFO] <name>: <message>`` (tao-output-samples.md 1);
    5.0: ``... [TAO Toolkit] [INFO] <name> <lineno>: <message>`` (tao_tensorflow1_backend 5.0
    makenet/scripts/inference.py:195-197 and every script's logging.basicConfig).
    """
    import sys

    now = datetime.now()
    stamp = f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d}"
    version = playing_tao_version()
    if name == PRUNE_LOGGER:
        name = PRUNE_LOGGERS[version]
    if version == "5":
        lineno = sys._getframe(1).f_lineno
        print(f"{stamp} [TAO Toolkit] [{level}] {name} {lineno}: {message}", flush=True)
    else:
        print(f"{stamp} [{level}] {name}: {message}", flush=True)


def write_status(results_dir: str, status: str, message: str) -> None:
    """Appends one TAO 5.0 ``status.json`` line (tao-classification.md section 5)."""
    import json

    now = datetime.now()
    record = {
        "date": f"{now.month}/{now.day}/{now.year}",
        "time": f"{now:%H:%M:%S}",
        "status": status,
        "verbosity": "INFO",
        "message": message,
    }
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(results_dir) / "status.json", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def say(text: str = "") -> None:
    """Prints a plain output line (Keras-style output has no log prefix) and flushes it."""
    print(text, flush=True)


def use_all_cores() -> None:
    """Lets torch use every core (its default can be lower in containers).

    ``OMP_NUM_THREADS``, when set, wins: it is how a user shares the cores with other work.
    """
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(os.cpu_count() or 1)


def load_experiment_spec(path: str, task: str | None = None) -> Any:
    """Loads the protobuf-text spec with ``tao_kfp.spec``; checks the TAO rules for ``task``.

    Raises:
        BackendError: the file is missing or invalid, naming the file and the fields.
    """
    from tao_kfp.spec import SpecError, load_spec, validate_spec

    if not path:
        raise BackendError("no experiment spec: pass it with -e <spec file>")
    try:
        spec = load_spec(path)
    except SpecError as error:
        raise BackendError(str(error)) from None
    if playing_tao_version() == "5" and spec.model_config.use_imagenet_head:
        # TAO 5's ModelConfig has no such field (it is retain_head): its text parser fails.
        raise BackendError(
            f'{path}: Message type "ModelConfig" has no field named "use_imagenet_head" '
            "(TAO 5 calls it retain_head)"
        )
    if task is not None:
        problems = validate_spec(spec, task)
        if problems:
            listed = "\n  - ".join(problems)
            raise BackendError(f"{path} is not valid for {task}:\n  - {listed}")
    return spec


def input_shape(spec: Any) -> tuple[int, int, int]:
    """``model_config.input_image_size`` ("C,H,W") as integers."""
    text = spec.model_config.input_image_size
    try:
        channels, height, width = (int(part) for part in text.split(","))
    except ValueError:
        raise BackendError(
            f'model_config.input_image_size must be "C,H,W" such as "3,224,224" (got {text!r})'
        ) from None
    if channels not in (1, 3):
        raise BackendError(f"model_config.input_image_size: channels must be 1 or 3 (got {text})")
    return channels, height, width


def refuse_existing(path: str, flag: str) -> Path:
    """Returns ``path`` (parent created) or fails if it exists, as TAO's export does."""
    target = Path(path)
    if target.exists():
        raise BackendError(
            f"{target} already exists ({flag}); TAO does not overwrite it. "
            "Delete it or pass a new path."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def progress_bar(description: str, done: int, total: int, width: int = 30) -> str:
    """A tqdm-like bar, e.g. ``Writing calibration tensorfile: 100%|####| 4/4``."""
    filled = width * done // max(total, 1)
    percent = 100 * done // max(total, 1)
    return f"{description}: {percent:3d}%|{'#' * filled}{' ' * (width - filled)}| {done}/{total}"
