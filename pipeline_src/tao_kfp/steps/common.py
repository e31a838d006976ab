"""Helpers shared by the step implementations: run layout, checkpoints, spec files, sizes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Optional

# Sub-folders of a run directory <workspace>/experiments/<run id>. One place defines them so
# every step agrees; the run directory itself flows between steps as an output.
RUN_LAYOUT = {
    "specs": "specs",
    "dataset": "dataset",
    "train": "train",
    "evaluate": "evaluate",
    "prune": "prune",
    "retrain": "retrain",
    "re_evaluate": "re_evaluate",
    "inference": "inference",
    "export": "export",
    "export_int8": "export_int8",
    "tensorrt": "tensorrt",
}

# TAO writes one checkpoint per epoch: weights/<arch>_<epoch:03d>.tlt (3.x) or .hdf5 (5.0).
CHECKPOINT_PATTERN = r"^{arch}_(?P<epoch>\d{{3,}})\.(?P<ext>tlt|hdf5)$"


def run_subdir(run_dir: str | Path, name: str) -> Path:
    """Returns (and creates) the folder of step ``name`` inside the run directory."""
    folder = Path(run_dir) / RUN_LAYOUT[name]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find_latest_checkpoint(results_dir: str | Path, arch: str) -> Path:
    """Returns the checkpoint of the highest epoch in ``<results_dir>/weights``.

    Raises:
        FileNotFoundError: No ``<arch>_<epoch>.tlt|hdf5`` exists, naming what was listed.
    """
    weights = Path(results_dir) / "weights"
    pattern = re.compile(CHECKPOINT_PATTERN.format(arch=re.escape(arch)))
    found = []
    if weights.is_dir():
        for path in weights.iterdir():
            match = pattern.match(path.name)
            if match:
                found.append((int(match["epoch"]), path))
    if not found:
        listing = sorted(p.name for p in weights.iterdir()) if weights.is_dir() else "missing"
        raise FileNotFoundError(
            f"no checkpoint {arch}_<epoch>.tlt|hdf5 in {weights} (contents: {listing}). "
            "Check the training log above: TAO writes one per epoch."
        )
    return max(found)[1]


def size_mb(path: str | Path) -> float:
    """Size of a file (or the files under a folder) in MB (10^6 bytes), to the byte."""
    path = Path(path)
    if path.is_dir():
        total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        total = path.stat().st_size
    return round(total / 1e6, 6)


def write_spec_with(base_spec: str | Path, overrides: Dict[str, object], out: str | Path) -> Path:
    """Loads a spec, applies dotted-key overrides, writes it to ``out`` and returns ``out``."""
    from tao_kfp import spec as spec_module

    spec = spec_module.apply_overrides(spec_module.load_spec(base_spec), overrides)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(spec_module.dump_spec(spec))
    return out


def spec_arch(spec_path: str | Path) -> str:
    """The ``model_config.arch`` of a spec file (the checkpoint file-name prefix)."""
    from tao_kfp import spec as spec_module

    return spec_module.load_spec(spec_path).model_config.arch


def log_metrics(metrics, values: Dict[str, Optional[float]]) -> None:
    """Logs each non-None value to a kfp Metrics artifact (None when the caller has none)."""
    if metrics is None:
        return
    for key, value in values.items():
        if value is not None:
            metrics.log_metric(key, float(value))
