"""Fixtures for the suite against KFP's own API server (``make e2e-kfp``).

hack/kfp-server/up.sh starts the server at one KFP release (``KFP_TAG``), MariaDB, SeaweedFS
and a control plane and writes their addresses to an env file; ``KFP_SERVER_ENV`` names that
file. Every test uses pipeline names of its own, so tests share one server without seeing each
other's objects. Where releases differ, a test asserts what each one does; nothing is skipped
(a skip fails the session: a missing part must never pass as green).

``KFP_E2E_PRE_FIX`` (set by test_deliberate_failures.py only) runs the uploader with one fix
taken out (pre_fix_upload.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "files" / "pipelines" / "tao-classification.yaml"
TAO_KFP = Path(sys.executable).with_name("tao-kfp")


@dataclass(frozen=True)
class KfpServer:
    """The running server, as hack/kfp-server/up.sh describes it."""

    env: Dict[str, str]

    @property
    def host(self) -> str:
        return self.env["KFP_HOST"]

    @property
    def kubeconfig(self) -> str:
        return self.env["KUBECONFIG"]

    @property
    def release(self) -> Tuple[int, ...]:
        """The KFP release running, e.g. (2, 0, 5)."""
        return tuple(int(part) for part in self.env["KFP_TAG"].split("."))

    def upload(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs ``tao-kfp upload --host <server> ARGS`` as the chart's Job does."""
        pre_fix = os.environ.get("KFP_E2E_PRE_FIX")
        uploader = (
            [sys.executable, str(Path(__file__).with_name("pre_fix_upload.py")), pre_fix]
            if pre_fix
            else [str(TAO_KFP), "upload"]
        )
        result = subprocess.run(
            [*uploader, "--host", self.host, "--deadline-seconds", "120", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and result.returncode != 0:
            pytest.fail(f"tao-kfp upload {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result


def _read_env(path: Path) -> Dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="session")
def kfp_server() -> KfpServer:
    path = os.environ.get("KFP_SERVER_ENV")
    if not path or not Path(path).is_file():
        pytest.fail(
            "KFP_SERVER_ENV does not name the env file of a running KFP server: run `make e2e-kfp`"
            " (or hack/kfp-server/up.sh STATE_DIR, then KFP_SERVER_ENV=STATE_DIR/kfp.env)"
        )
    return KfpServer(_read_env(Path(path)))


@pytest.fixture(scope="session")
def client(kfp_server: KfpServer):
    from kfp.client import Client

    return Client(host=kfp_server.host)


@pytest.fixture(scope="session")
def custom_objects(kfp_server: KfpServer):
    """Kubernetes' custom objects API of the server's control plane."""
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(kfp_server.kubeconfig))


@pytest.fixture
def name() -> str:
    """A pipeline name no other test uses (lower case: KFP's name rule)."""
    return f"tao-e2e-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def changed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped package with another description: a changed pipeline, same parameters."""
    docs: List[dict] = list(yaml.safe_load_all(PACKAGE.read_text()))
    docs[0]["pipelineInfo"]["description"] += " (changed by the e2e suite)"
    path = tmp_path_factory.mktemp("packages") / "changed.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test fails the run: against the real server every case must be asserted."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    here = Path(__file__).parent.relative_to(REPO).as_posix() + "/"
    skipped = [
        report for report in (reporter.stats.get("skipped", []) if reporter else [])
        if getattr(report, "nodeid", "").startswith(here)
    ]  # fmt: skip
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"kfp_server: {len(skipped)} test(s) skipped; that is a failure here")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
