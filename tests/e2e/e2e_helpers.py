"""Shared parts of the container end-to-end tests (`make e2e`, hack/e2e.sh).

The images are built by hack/e2e.sh first; these tests fail (never skip) when they are
missing. Kubernetes is not here: hack/podrun.py runs each pod's containers in podman as the
kubelet would, the KFP API is tests/doubles/kfp_api.py and the two Kubernetes API calls of the
helm tests (read a Secret, list nodes) are answered by ``KubeApiDouble`` below.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

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


class KubeApiDouble:
    """TEST DOUBLE of the two Kubernetes API reads the helm tests make, over https.

    GET /api/v1/namespaces/NS/secrets/NAME answers from ``cluster.secrets`` (a Secret object
    with base64 data, as the API server returns it); GET /api/v1/nodes?labelSelector=...
    answers from ``nodes``. A request without the cluster's Bearer token gets 401.
    """

    def __init__(self, cluster, token: str, tls: tuple, nodes: Optional[List[dict]] = None):
        self.cluster, self.token, self.nodes = cluster, token, nodes or []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str) -> None:
                self._send(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": reason,
                        "code": code,
                    },
                )

            def do_GET(self):  # noqa: N802
                # the kubernetes client sends "bearer <token>"; the scheme is case-insensitive
                scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() != "bearer" or token != double.token:
                    return self._status(401, "Unauthorized")
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["secrets"]:
                    namespace, name = parts[3], parts[5]
                    data = double.cluster.secrets.get(name)
                    if namespace != double.cluster.namespace or data is None:
                        return self._status(404, "NotFound")
                    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
                    return self._send(
                        200,
                        {
                            "kind": "Secret",
                            "apiVersion": "v1",
                            "metadata": {"name": name, "namespace": namespace},
                            "data": encoded,
                        },
                    )
                if parts == ["api", "v1", "nodes"]:
                    selector = parse_qs(url.query).get("labelSelector", [""])[0]
                    wanted = dict(i.split("=", 1) for i in selector.split(",") if i)
                    items = [
                        n
                        for n in double.nodes
                        if all(n["metadata"]["labels"].get(k) == v for k, v in wanted.items())
                    ]
                    return self._send(
                        200,
                        {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items},
                    )
                return self._status(404, "NotFound")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
