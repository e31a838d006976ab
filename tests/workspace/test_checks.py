"""`tao-kfp check secrets` / `check gpu-nodes` with the real kubernetes client against a small
local stand-in of the Kubernetes API (tests/doubles/kube_api.py: an HTTP server answering the
two GET calls the checks make), so requests, responses and errors go through the client's real
code."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from doubles.kube_api import FakeKubeApi, KubeStatus
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


def secret_data(namespace: str, name: str):
    if (namespace, name) in FORBIDDEN:
        raise KubeStatus(403, "Forbidden")
    return SECRETS.get((namespace, name))


def node_objects():
    return [
        {
            "metadata": {"name": n["name"], "labels": n["labels"]},
            "status": {"allocatable": n["allocatable"]},
        }
        for n in NODES
    ]


@pytest.fixture(scope="module")
def api():
    double = FakeKubeApi(secret_data, node_objects)
    configuration = client.Configuration()
    configuration.host = double.url
    yield client.CoreV1Api(client.ApiClient(configuration))
    double.stop()


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
