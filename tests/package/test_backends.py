"""tao_kfp.package adapts the package to the KFP backend that will run it (upload and render).

Which backend takes which field (kubeflow/pipelines, docs/kfp-backends.md):
- securityContext is applied from 2.16.0 (backend/src/v2/driver/k8s.go:724 at 2.16.0);
  2.14.x-2.15.x reject run creation with `unknown field "securityContext"` (strict
  protojson.Unmarshal in the API server's Argo compiler, backend/src/v2/compiler/argocompiler/
  container.go:285 at 2.14.0);
- secretAsEnv `optional` is applied from 2.15.0 (backend/src/v2/driver/k8s.go:340-341 at
  2.15.0, absent at 2.14.0);
- 2.4.1-2.5.x drop unknown fields silently (lenient driver, PR #11662);
- 2.0.0-2.4.0 fail every step (strict driver), 2.4.1 leaves {{$.pipeline_job_uuid}} as is;
- healthz reports the version in `tag_name`, "unknown" on custom builds
  (backend/src/apiserver/main.go:556-581).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import yaml

from helpers.packages import has_optional_secrets, has_security_context
from tao_kfp.environment import EnvironmentConfig
from tao_kfp.package import KfpBackend, adapt_for_backend, adapt_package, load_package
from tao_kfp.resources import shipped_file

PACKAGE = shipped_file("pipelines/tao-classification.yaml")


@pytest.fixture(scope="module")
def adapted() -> List[dict]:
    return adapt_package(load_package(PACKAGE), EnvironmentConfig())


def test_the_shipped_package_uses_the_fields_that_need_new_backends(adapted):
    # Otherwise the tests below would pass for nothing.
    assert has_security_context(adapted) and has_optional_secrets(adapted)


@pytest.mark.parametrize(
    "version, security_context, optional, lost",
    [
        pytest.param("2.17.0", True, True, [], id="2.17: everything"),
        pytest.param("2.16.0", True, True, [], id="2.16: everything"),
        pytest.param("2.15.0", False, True, ["runAsUser"], id="2.15: no securityContext"),
        pytest.param("2.14.3", False, False, ["runAsUser", "optional"], id="2.14"),
        pytest.param("2.5.0", False, False, ["runAsUser", "optional"], id="2.5"),
    ],
)
def test_each_backend_gets_only_what_it_can_take_and_the_loss_is_named(
    adapted, version, security_context, optional, lost
):
    docs, lines = adapt_for_backend(adapted, KfpBackend.parse(version))

    assert has_security_context(docs) is security_context
    assert has_optional_secrets(docs) is optional
    assert len(lines) == len(lost)
    for line, word in zip(lines, lost):
        assert line.startswith(f"KFP {version}: ") and word in line
    assert has_security_context(adapted), "the input must stay unchanged"


def test_adapt_package_takes_the_backend_in_the_same_pass(adapted):
    backend = KfpBackend.parse("2.15.0")
    one_pass = adapt_package(load_package(PACKAGE), EnvironmentConfig(), backend=backend)
    assert one_pass == adapt_for_backend(adapted, backend)[0]


@pytest.mark.parametrize("version", ["2.4.1", "2.4.0", "2.0.5", "1.8.5"])
def test_backends_below_the_floor_are_refused_with_the_floor(adapted, version):
    with pytest.raises(ValueError, match=r"needs KFP 2\.5\.0 or newer"):
        adapt_for_backend(adapted, KfpBackend.parse(version))


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("2.5.0", (2, 5, 0)),
        ("v2.16.1", (2, 16, 1)),
        ("2.15.0-rc.1", (2, 15, 0)),
        ("2.14", (2, 14, 0)),
    ],
)
def test_versions_parse_as_healthz_reports_them(text, parsed):
    assert KfpBackend.parse(text).version == parsed


@pytest.mark.parametrize("text", ["unknown", "", "master", "2"])
def test_what_is_not_a_version_is_refused_by_name(text):
    with pytest.raises(ValueError, match="is not a version"):
        KfpBackend.parse(text)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text("workspace:\n  claimName: team-claim\n")
    return path


def test_render_previews_the_same_adaptation(config):
    command = [sys.executable, "-m", "tao_kfp.cli", "render", "--config", str(config)]
    result = subprocess.run(
        [*command, "--kfp-version", "2.15.0"], capture_output=True, text=True, check=True
    )
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert not has_security_context(docs) and has_optional_secrets(docs)
    assert "KFP 2.15.0: runAsUser/runAsGroup not applied" in result.stderr

    refused = subprocess.run([*command, "--kfp-version", "2.4.1"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "needs KFP 2.5.0 or newer" in refused.stderr and "Traceback" not in refused.stderr
