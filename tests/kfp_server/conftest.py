"""Fixtures for the suite against KFP's own API server (``make e2e-kfp``).

hack/kfp-server/up.sh starts the server, MariaDB, SeaweedFS and a control plane and writes
their addresses to an env file; ``KFP_SERVER_ENV`` names that file. Every test uses pipeline
names of its own, so tests share one server without seeing each other's objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

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

    def upload(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs ``tao-kfp upload --host <server> ARGS`` as the chart's Job does."""
        result = subprocess.run(
            [str(TAO_KFP), "upload", "--host", self.host, "--deadline-seconds", "120", *args],
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
    if kfp_server.env.get("KFP_CLUSTER") == "none":
        pytest.skip("started with CLUSTER_ENV=none: no control plane for runs and schedules")
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
