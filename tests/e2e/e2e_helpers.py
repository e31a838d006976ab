"""Shared parts of the container end-to-end tests (`make e2e`, hack/e2e.sh).

The images are built by hack/e2e.sh first; these tests fail (never skip) when they are
missing. Kubernetes is not here: hack/podrun.py runs each pod's containers in podman as the
kubelet would, the KFP API is tests/doubles/kfp_api.py and the two Kubernetes API calls of the
helm tests (read a Secret, list nodes) are answered by ``KubeApiDouble`` below
(tests/doubles/kube_api.py).
"""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

from doubles.kube_api import FakeKubeApi

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "rel"


def _load_podrun():
    spec = importlib.util.spec_from_file_location("podrun", ROOT / "hack" / "podrun.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["podrun"] = module
    spec.loader.exec_module(module)
    return module


podrun = _load_podrun()
# The project's podman settings where there is no systemd, as hack/podman-env.sh does.
if not Path("/run/systemd/system").is_dir():
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "hack" / "containers.conf"))


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `make e2e` (hack/e2e.sh)")
    return value


def image(name: str) -> str:
    return f"{required_env('E2E_REGISTRY')}/{name}:{required_env('E2E_VERSION')}"


def helm() -> str:
    path = os.environ.get("HELM3") or str(ROOT / ".tools" / "helm-3.18.0" / "helm")
    if not Path(path).is_file():
        pytest.fail(f"helm not found at {path}: run `make tools`")
    return path


def scenario_namespace(values_file: Path) -> str:
    """Where a ci/ scenario installs: its `# helm-namespace:` line (the chart refuses any
    namespace but the one KFP runs the pipeline's pods in)."""
    for line in values_file.read_text().splitlines():
        if line.startswith("# helm-namespace:"):
            return line.split(":", 1)[1].strip()
    return "kubeflow"


def render(values_file: Path, overrides: Dict[str, Any], namespace: str) -> List[Dict[str, Any]]:
    """`helm template` of the chart with a scenario file plus overrides (a values file)."""
    override_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"e2e-{os.getpid()}-overrides.yaml"
    override_file.write_text(yaml.safe_dump(overrides))
    try:
        out = subprocess.run(
            [
                helm(),
                "template",
                RELEASE,
                str(ROOT),
                "-n",
                namespace,
                "-f",
                str(values_file),
                "-f",
                str(override_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        override_file.unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def self_signed_cert(folder: Path) -> tuple:
    """A certificate for 127.0.0.1 (the doubles serve https with it)."""
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


class KubeApiDouble(FakeKubeApi):
    """TEST DOUBLE of the two Kubernetes API reads the helm tests make, over https
    (tests/doubles/kube_api.py).

    GET /api/v1/namespaces/NS/secrets/NAME answers from ``cluster.secrets`` (a Secret object
    with base64 data, as the API server returns it); GET /api/v1/nodes?labelSelector=...
    answers from ``nodes``. A request without the cluster's Bearer token gets 401.
    """

    def __init__(self, cluster, token: str, tls: tuple, nodes: Optional[List[dict]] = None):
        self.cluster, self.nodes = cluster, nodes or []
        super().__init__(self._secret_data_of_cluster, lambda: self.nodes, token=token, tls=tls)

    def _secret_data_of_cluster(self, namespace: str, name: str) -> Optional[Dict[str, str]]:
        data = self.cluster.secrets.get(name)
        if namespace != self.cluster.namespace or data is None:
            return None
        return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
