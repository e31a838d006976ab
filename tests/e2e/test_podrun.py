"""hack/podrun.py refuses what it does not translate and translates what the chart sets.

No container runs here (the image's config is given), so these run first in `make e2e`.
"""

from __future__ import annotations

import copy

import pytest
from e2e_helpers import podrun

pytestmark = pytest.mark.e2e

IMAGE_CONFIG = {
    "Entrypoint": ["/usr/local/bin/tao-kfp-entrypoint"],
    "Cmd": ["--help"],
    "User": "1000:1000",
}
SECRET_VALUE = "SENTINEL-secret-value-91c2"

POD = {
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 2001,
            "runAsGroup": 3001,
            "fsGroup": 3001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "c",
                "image": "tools:1",
                "command": ["tao-kfp"],
                "args": ["check", "secrets"],
                "env": [{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "cfg", "configMap": {"name": "m"}}],
    },
}


@pytest.fixture
def cluster(monkeypatch):
    monkeypatch.setattr(podrun, "image_config", lambda engine, image: dict(IMAGE_CONFIG))
    return podrun.Cluster(
        namespace="tao", secrets={"s": {"k": SECRET_VALUE}}, config_maps={"m": {"a.yaml": "x: 1\n"}}
    )


def test_translates_what_the_chart_sets(cluster, tmp_path):
    (run,), (env_file,) = podrun.translate(copy.deepcopy(POD), cluster, tmp_path)
    argv = " ".join(run.argv)
    for flag in (
        "--user=2001:3001",
        "--group-add=3001",
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--network=host",
        ":/etc/cfg:ro",
        '--entrypoint=["tao-kfp"]',
    ):
        assert flag in argv, flag
    assert run.executed == ["tao-kfp", "check", "secrets"] and not run.command_from_image
    assert SECRET_VALUE not in argv  # only in the 0600 env file
    assert f"KEY={SECRET_VALUE}" in env_file.read_text()
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_without_command_the_image_entrypoint_runs(cluster, tmp_path):
    pod = copy.deepcopy(POD)
    del pod["spec"]["containers"][0]["command"]
    (run,), _ = podrun.translate(pod, cluster, tmp_path)
    assert run.command_from_image
    assert run.executed == ["/usr/local/bin/tao-kfp-entrypoint", "check", "secrets"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "hostNetwork"), True),
        (("spec", "containers", 0, "lifecycle"), {}),
        (("spec", "containers", 0, "securityContext", "procMount"), "Default"),
        # Only folders are translated (the local-path provisioner's helper pods in make
        # e2e-cluster mount one); a socket, file or device is not.
        (("spec", "volumes", 0), {"name": "cfg", "hostPath": {"path": "/", "type": "Socket"}}),
        (("spec", "securityContext", "seccompProfile"), {"type": "Unconfined"}),
        (("spec", "containers", 0, "env", 0, "valueFrom"), {"fieldRef": {"fieldPath": "x"}}),
    ],
    ids=[
        "hostNetwork",
        "lifecycle",
        "procMount",
        "hostPath-socket",
        "seccomp-unconfined",
        "fieldRef",
    ],
)
def test_refuses_fields_it_does_not_translate(cluster, tmp_path, path, value):
    pod = copy.deepcopy(POD)
    node = pod
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(podrun.UnsupportedField):
        podrun.translate(pod, cluster, tmp_path)


def test_missing_secret_key_stops_the_start_like_the_kubelet(cluster, tmp_path):
    cluster.secrets["s"] = {}
    with pytest.raises(podrun.PodStartError, match="couldn't find key k in Secret tao/s"):
        podrun.translate(copy.deepcopy(POD), cluster, tmp_path)


def test_run_as_non_root_with_a_root_image(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(podrun, "image_config", lambda engine, image: {"User": ""})
    pod = copy.deepcopy(POD)
    del pod["spec"]["securityContext"]["runAsUser"]
    with pytest.raises(podrun.PodStartError, match="runAsNonRoot and image will run as root"):
        podrun.translate(pod, cluster, tmp_path)
