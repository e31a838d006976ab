"""Step 3: make the pretrained model available in the workspace's shared cache.

Cache layout: ``<workspace>/models/pretrained/<slug>/<model file>`` plus ``complete.json``
(source, file name, sha256) written last. A cached model is reused only when the marker
exists and the file's sha256 still matches. An exclusive ``fcntl`` lock on
``<slug>.lock`` keeps concurrent runs from downloading into the same folder at once.

Sources: "" (train from scratch), an NGC reference such as
``nvidia/tao/pretrained_classification:resnet18`` (downloaded with ``ngcsdk``; the key comes
from ``NGC_CLI_API_KEY``), or a model file on the workspace (copied in).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tao_kfp.tao import NGC_API_KEY_ENV

MARKER = "complete.json"
# TF1 models (.hdf5, .tlt) and PyTorch backbones (.pth, .ckpt: tao_kfp.routes.pyt).
MODEL_SUFFIXES = (".hdf5", ".tlt", ".pth", ".ckpt")


@dataclass
class PretrainedResult:
    """Path of the model to start from ("" for scratch) and how it was obtained."""

    model_path: str
    status: str  # none | cached | downloaded | copied


class PretrainedError(RuntimeError):
    """The pretrained model could not be obtained; the message says how to fix it."""


def slug(source: str) -> str:
    """A folder name for a source: readable, and unique per source string."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.strip("/"))[-60:]
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (created if missing) for the block's duration."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_model(folder: Path) -> Path | None:
    """The cached model in ``folder`` if its marker exists and its sha256 matches."""
    marker = folder / MARKER
    if not marker.is_file():
        return None
    record = json.loads(marker.read_text())
    model = folder / record["file"]
    if model.is_file() and sha256_of(model) == record["sha256"]:
        return model
    print(f"cached model in {folder} is incomplete or changed: fetching again", flush=True)
    return None


def find_model_file(folder: Path) -> Path:
    """The single model file under ``folder`` (NGC nests it in <name>_v<version>/)."""
    found = sorted(p for p in folder.rglob("*") if p.suffix in MODEL_SUFFIXES and p.is_file())
    if len(found) != 1:
        raise PretrainedError(
            f"expected one {'/'.join(MODEL_SUFFIXES)} model in the download, found "
            f"{[str(p) for p in found]}; "
            "pass the model file's workspace path as pretrained_model instead."
        )
    return found[0]


def ngcsdk_available() -> bool:
    """True when ``ngcsdk`` can be imported (checked by step 1 before any GPU is claimed)."""
    import importlib.util

    return importlib.util.find_spec("ngcsdk") is not None


def download_ngc(reference: str, destination: Path) -> None:
    """Downloads an NGC model version with ``ngcsdk`` into ``destination``."""
    try:
        from ngcsdk import Client
    except ImportError as error:
        raise PretrainedError(
            f"cannot download {reference}: the ngcsdk package is not installed in this step's "
            "image. Install ngcsdk in the tools image, or download the model onto the "
            "workspace and pass its path as pretrained_model."
        ) from error
    parts = reference.split(":")[0].split("/")
    org, team = parts[0], parts[1] if len(parts) == 3 else "no-team"
    client = Client()
    # Public models (nvidia/tao/*) download without a key; the Secret is optional.
    client.configure(api_key=os.environ.get(NGC_API_KEY_ENV) or None, org_name=org, team_name=team)
    client.registry.model.download_version(reference, destination=str(destination))


def fetch_pretrained(source: str, cache_root: str | Path) -> PretrainedResult:
    """Returns the pretrained model's path in the cache, fetching it at most once.

    Args:
        source: "" for no pretrained model, an NGC reference, or an absolute file path.
        cache_root: ``<workspace>/models/pretrained``.

    Returns:
        The model path ("" when training from scratch) and what happened.
    """
    if not source:
        print("no pretrained model: training from scratch", flush=True)
        return PretrainedResult(model_path="", status="none")
    cache_root = Path(cache_root)
    folder = cache_root / slug(source)
    with file_lock(cache_root / f"{folder.name}.lock"):
        model = cached_model(folder)
        if model is not None:
            print(f"using cached {model} (sha256 verified)", flush=True)
            return PretrainedResult(model_path=str(model), status="cached")
        staging = cache_root / f"{folder.name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if Path(source).is_absolute():
            shutil.copy2(source, staging / Path(source).name)
            status = "copied"
        else:
            download_ngc(source, staging)
            status = "downloaded"
        found = find_model_file(staging)
        if found.parent != staging:
            found = found.rename(staging / found.name)
        record = {"source": source, "file": found.name, "sha256": sha256_of(found)}
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        # The marker is written last: its presence means the folder is complete.
        (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    model = folder / record["file"]
    print(f"{status} {source} -> {model} (sha256 {record['sha256'][:12]}...)", flush=True)
    return PretrainedResult(model_path=str(model), status=status)
