"""One version source: Chart.yaml. Everything that carries a version must agree with it.

`hack/set-version.sh NEW` changes Chart.yaml; these tests then say what else is stale
(package install, compiled pipeline, CHANGELOG).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import tao_kfp
from tao_kfp.environment import EnvironmentConfig

ROOT = Path(__file__).resolve().parents[2]
CHART = yaml.safe_load((ROOT / "Chart.yaml").read_text())
VERSION = str(CHART["version"])
PIPELINES = sorted((ROOT / "files" / "pipelines").glob("*.yaml"))  # one per route


def test_chart_version_equals_app_version():
    assert str(CHART["appVersion"]) == VERSION, "Chart.yaml: set both with hack/set-version.sh"


def test_version_is_plain_semver():
    # The one spelling SemVer (Helm) and PEP 440 (the wheel) share; see hack/set-version.sh.
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), VERSION


def test_package_version_is_the_chart_version():
    assert tao_kfp.__version__ == VERSION, (
        f"installed tao-kfp is {tao_kfp.__version__}, Chart.yaml says {VERSION}: run `make setup`"
    )


def test_environment_default_image_tags_are_the_chart_version():
    images = EnvironmentConfig().images
    assert images.tao.endswith(f":{VERSION}") and images.tools.endswith(f":{VERSION}")


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda path: path.name)
def test_compiled_pipeline_images_carry_the_chart_version(pipeline):
    images = {
        executor["container"]["image"]
        for doc in yaml.safe_load_all(pipeline.read_text())
        for executor in (doc or {}).get("deploymentSpec", {}).get("executors", {}).values()
        if "container" in executor
    }
    assert images, "no container executors in the compiled pipeline"
    stale = sorted(image for image in images if not image.endswith(f":{VERSION}"))
    assert stale == [], f"recompile with `make compile`: {stale}"


def test_changelog_has_a_section_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(VERSION)}\]", changelog, re.M), (
        f"CHANGELOG.md has no '## [{VERSION}]' section"
    )


def test_kind_installs_the_kfp_backend_matching_the_sdk_pin():
    sdk = re.search(r'"kfp==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    backend = re.search(r"KFP_VERSION:-([^}]+)\}", (ROOT / "hack" / "kind-up.sh").read_text())
    assert backend and backend.group(1) == sdk
