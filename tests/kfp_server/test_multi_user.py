"""``tao-kfp upload`` against KFP's own server in multi-user mode (``make e2e-kfp``'s second
pass, marker ``kfp_server_multi_user``): the server authenticates the ServiceAccount token by
TokenReview and authorizes each call by SubjectAccessReview against the control plane's real
RBAC, with KFP's own kubeflow-pipelines-edit ClusterRole (multi-user manifests).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from .conftest import PACKAGE

pytestmark = pytest.mark.kfp_server_multi_user

PREFIX = "0.0.0-e2e"
RUN_PARAMS = {"dataset_path": "/workspace/e2e-dataset", "epochs": 3}
AUDIENCE = "pipelines.kubeflow.org"  # the audience KFP's TokenReview authenticator requires


@pytest.fixture(scope="module")
def kube(kfp_server):
    from kubernetes import client, config

    return client.ApiClient(config.new_client_from_config(kfp_server.kubeconfig).configuration)


@pytest.fixture(scope="module")
def profile(kfp_server, kube) -> str:
    """A profile namespace as Kubeflow's profile controller makes it: its default-editor
    ServiceAccount bound to KFP's kubeflow-pipelines-edit ClusterRole; and a ServiceAccount
    bound to nothing."""
    from kubernetes import client

    namespace = f"team-{uuid.uuid4().hex[:6]}"
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespace({"metadata": {"name": namespace}})
    for account in ("default-editor", "nobody"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "default-editor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kubeflow-pipelines-edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "default-editor",
                      "namespace": namespace}],
    })  # fmt: skip
    return namespace


def _token(kube, namespace: str, account: str, tmp_path: Path) -> Path:
    from kubernetes import client

    request = {"spec": {"audiences": [AUDIENCE], "expirationSeconds": 3600}}
    token = (
        client.CoreV1Api(kube)
        .create_namespaced_service_account_token(account, namespace, request)
        .status.token
    )
    path = tmp_path / f"{account}.token"
    path.write_text(token)
    return path


def _upload(kfp_server, namespace: str, token: Path, name: str, *args: str):
    return kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX,
        "--namespace", namespace, "--token-path", str(token), *args, check=False,
    )  # fmt: skip


def _pipelines(kfp_server, namespace: str, token: Path) -> list:
    answer = requests.get(
        f"{kfp_server.host}/apis/v2beta1/pipelines",
        params={"namespace": namespace, "page_size": 100},
        headers={"Authorization": f"Bearer {token.read_text()}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return [p["display_name"] for p in answer.json().get("pipelines", [])]


def test_healthz_says_multi_user(kfp_server):
    answer = requests.get(f"{kfp_server.host}/apis/v2beta1/healthz", timeout=10).json()
    assert answer["multi_user"] is True, answer


def test_an_editor_of_the_namespace_uploads_and_runs_there(kfp_server, kube, profile, tmp_path):
    from kubernetes import client

    token = _token(kube, profile, "default-editor", tmp_path)
    name = f"tao-e2e-{uuid.uuid4().hex[:8]}"
    result = _upload(kfp_server, profile, token, name, "--run-first",
                     "--run-params", json.dumps(RUN_PARAMS))  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert name in _pipelines(kfp_server, profile, token)
    # The run's Workflow is created in the profile namespace.
    workflows = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", profile, "workflows"
    )["items"]
    assert len(workflows) == 1, [w["metadata"]["name"] for w in workflows]


def test_an_account_without_the_role_is_refused_and_nothing_is_created(
    kfp_server, kube, profile, tmp_path
):
    editor = _token(kube, profile, "default-editor", tmp_path)
    token = _token(kube, profile, "nobody", tmp_path)
    name = f"tao-e2e-{uuid.uuid4().hex[:8]}"
    result = _upload(kfp_server, profile, token, name)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # The first call, a look-up, meets the SubjectAccessReview (verb list, pipelines.kubeflow.org).
    assert "HTTP 403" in output, output
    assert f"User 'system:serviceaccount:{profile}:nobody' is not authorized" in output, output
    assert name not in _pipelines(kfp_server, profile, editor)


def test_a_token_for_another_audience_is_refused(kfp_server, kube, profile, tmp_path):
    from kubernetes import client

    token = (
        client.CoreV1Api(kube)
        .create_namespaced_service_account_token(
            "default-editor", profile, {"spec": {"audiences": ["other"], "expirationSeconds": 3600}}
        )
        .status.token
    )
    path = tmp_path / "other.token"
    path.write_text(token)

    result = _upload(kfp_server, profile, path, f"tao-e2e-{uuid.uuid4().hex[:8]}")
    output = result.stdout + result.stderr
    # TokenReview with KFP's audience fails: no user identity, 401.
    assert result.returncode == 1 and "HTTP 401" in output, output
