"""`tao-kfp check secrets` / `check gpu-nodes` with the real kubernetes client against a small
local stand-in of the Kubernetes API (an HTTP server answering the two GET calls the checks
make), so requests, responses and errors go through the client's real code."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from tao_kfp.checks import check_gpu_nodes, check_secrets

SENTINEL = "SENTINEL-ngc-value-3c9d"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = {
    ("tao", "ngc"): {"NGC_API_KEY": b64(SENTINEL), "TAO_MODEL_KEY": b64("nvidia_tlt")},
    ("tao", "half"): {"NGC_API_KEY": b64(SENTINEL), "TAO_MODEL_KEY": ""},
}
FORBIDDEN = {("tao", "other-team")}
NODES = [
    {"name": "cpu-1", "labels": {}, "allocatable": {"cpu": "8"}},
    {
        "name": "gpu-1",
        "labels": {"nvidia.com/gpu.present": "true"},
        "allocatable": {"nvidia.com/gpu": "4"},
    },
    {
        "name": "gpu-2",
        "labels": {"nvidia.com/gpu.present": "true", "pool": "mig"},
        "allocatable": {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "7"},
    },
]


class FakeKubernetesApiServer(BaseHTTPRequestHandler):
    """Test double of the Kubernetes API: GET one Secret, GET the node list."""

    def log_message(self, *args):  # keep test output quiet
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

    def do_GET(self):  # noqa: N802 (http.server API)
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["secrets"]:
            key = (parts[3], parts[5])
            if key in FORBIDDEN:
                return self._status(403, "Forbidden")
            if key not in SECRETS:
                return self._status(404, "NotFound")
            return self._send(
                200,
                {
                    "kind": "Secret",
                    "apiVersion": "v1",
                    "type": "Opaque",
                    "metadata": {"name": key[1], "namespace": key[0]},
                    "data": SECRETS[key],
                },
            )
        if parts == ["api", "v1", "nodes"]:
            selector = parse_qs(url.query).get("labelSelector", [""])[0]
            wanted = dict(item.split("=", 1) for item in selector.split(",") if item)
            items = [
                {
                    "metadata": {"name": n["name"], "labels": n["labels"]},
                    "status": {"allocatable": n["allocatable"]},
                }
                for n in NODES
                if all(n["labels"].get(k) == v for k, v in wanted.items())
            ]
            return self._send(
                200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}
            )
        return self._status(404, "NotFound")


@pytest.fixture(scope="module")
def api():
    server = HTTPServer(("127.0.0.1", 0), FakeKubernetesApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_port}"
    yield client.CoreV1Api(client.ApiClient(configuration))
    server.shutdown()


def test_secret_with_all_keys_passes_without_printing_values(api, capsys):
    assert check_secrets(api, "tao", [("ngc", ["NGC_API_KEY", "TAO_MODEL_KEY"])]) == []
    out = capsys.readouterr().out
    assert "ok: Secret tao/ngc has NGC_API_KEY, TAO_MODEL_KEY" in out
    assert SENTINEL not in out and b64(SENTINEL) not in out


def test_missing_key_names_the_keys_it_has_and_the_fix(api, capsys):
    problems = check_secrets(api, "tao", [("ngc", ["api-key"])])
    assert len(problems) == 1
    assert "lacks key(s) api-key (it has: NGC_API_KEY, TAO_MODEL_KEY)" in problems[0]
    assert "ngc.secretKeys" in problems[0]
    assert SENTINEL not in problems[0] + capsys.readouterr().out


def test_empty_key_is_reported(api):
    problems = check_secrets(api, "tao", [("half", ["NGC_API_KEY", "TAO_MODEL_KEY"])])
    assert problems == ["Secret tao/half has empty key(s) TAO_MODEL_KEY: set a value"]


def test_missing_and_forbidden_secrets_say_what_to_do(api):
    problems = check_secrets(
        api, "tao", [("absent", ["NGC_API_KEY"]), ("other-team", ["NGC_API_KEY"])]
    )
    assert "Secret tao/absent not found" in problems[0] and "ngc.existingSecret" in problems[0]
    assert "not allowed to read Secret tao/other-team" in problems[1]


def test_gpu_nodes_found(api, capsys):
    assert check_gpu_nodes(api, ["nvidia.com/gpu.present=true"], "nvidia.com/gpu") == []
    assert "ok: 1 node(s) with nvidia.com/gpu: gpu-1" in capsys.readouterr().out


def test_mig_resource_on_a_custom_selector(api):
    assert check_gpu_nodes(api, ["pool=mig"], "nvidia.com/mig-1g.10gb") == []


def test_nodes_without_allocatable_gpus(api):
    problems = check_gpu_nodes(api, ["pool=mig"], "nvidia.com/gpu")
    assert problems and "none has allocatable nvidia.com/gpu" in problems[0]


def test_no_node_matches_the_selector(api):
    problems = check_gpu_nodes(api, ["pool=a100"], "nvidia.com/gpu")
    assert problems and "no node has the labels pool=a100" in problems[0]
    assert "gpu.nodeSelector" in problems[0]
