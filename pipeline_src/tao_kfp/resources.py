"""Locates files the chart and the package share (spec templates, the compiled pipeline)."""

from importlib import resources
from pathlib import Path

# In a source checkout (editable install) the files live in the chart's files/ folder;
# in a wheel hatch force-includes them into the package.
SOURCE_FILES = Path(__file__).resolve().parents[2] / "files"


def shipped_file(relative: str) -> Path:
    """Returns the path of a shipped file such as ``specs/classification_spec.cfg``."""
    packaged = resources.files("tao_kfp").joinpath(relative)
    if packaged.is_file():
        return Path(str(packaged))
    candidate = SOURCE_FILES / relative
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"shipped file {relative!r} not found in the tao_kfp package or in {SOURCE_FILES}"
    )
