"""`make package`: the chart archive holds the chart and the precompiled pipeline, nothing else."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = yaml.safe_load((ROOT / "Chart.yaml").read_text())
MAX_BYTES = 1024 * 1024

# What a chart archive may hold (relative to the chart root); anything else, such as
# pipeline_src/, tests/, hack/, .venv/ or the Makefile, belongs in .helmignore.
ALLOWED_PREFIXES = ("templates/", "files/", "charts/", "ci/")
ALLOWED_FILES = {"Chart.yaml", "values.yaml", "values.schema.json", "README.md", ".helmignore"}
REQUIRED = (
    "Chart.yaml",
    "values.yaml",
    "values.schema.json",
    "templates/tests/test-kfp.yaml",
    "files/pipelines/tao-classification.yaml",
    "files/pipelines/tao-classification-pyt.yaml",
)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    helm = os.environ.get("HELM3")
    if not helm:
        pytest.skip("HELM3 is not set (make exports the pinned helm; or HELM3=/path/to/helm)")
    # Without .helmignore helm would pack .venv (GBs): fail fast instead of waiting for that.
    assert (ROOT / ".helmignore").is_file(), ".helmignore is missing: helm package takes all"
    destination = tmp_path_factory.mktemp("dist")
    # The same command as the Makefile's `package` target.
    subprocess.run(
        [helm, "package", str(ROOT), "--destination", str(destination)],
        check=True,
        capture_output=True,
        text=True,
    )
    archive = destination / f"{CHART['name']}-{CHART['version']}.tgz"
    assert archive.is_file(), f"expected {archive.name}, got {os.listdir(destination)}"
    return archive


@pytest.fixture(scope="module")
def members(package) -> list[str]:
    prefix = f"{CHART['name']}/"
    with tarfile.open(package) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert all(name.startswith(prefix) for name in names), names
    return [name[len(prefix) :] for name in names]


def test_archive_holds_only_chart_files(members):
    stray = [n for n in members if n not in ALLOWED_FILES and not n.startswith(ALLOWED_PREFIXES)]
    assert stray == [], f"not chart files, add them to .helmignore: {stray}"


def test_archive_holds_the_chart_and_the_pipeline(members):
    missing = [name for name in REQUIRED if name not in members]
    assert missing == []
    assert any(name.startswith("templates/") for name in members)


def test_archive_is_small(package):
    size = package.stat().st_size
    print(f"{package.name}: {size} bytes ({size / 1024:.1f} KiB)")
    assert size < MAX_BYTES
