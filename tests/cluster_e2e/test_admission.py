"""What the API server itself accepts or refuses, beyond the helm lifecycle:

- values `helm template` accepts on purpose (tests/chart/test_render.py: release names YAML
  reads as numbers, the largest UID, a numeric claim name, 10,000,000 s deadlines) are
  accepted by the API server too (server-side dry run of everything Helm renders, hooks and
  test pods included, as the namespace admin, under PodSecurity `restricted`);
- RBAC escalation prevention: a namespace admin without KFP's edit role cannot create the
  chart's multi-user RoleBinding to kubeflow-pipelines-edit;
- PodSecurity `restricted` is really enforced here (a root pod is refused), so "no pod
  refused" in the lifecycle test means something.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml
from cluster_helpers import ROOT, TENANT, helm_binary
from test_lifecycle import kfp_cluster_roles

pytestmark = pytest.mark.e2e_cluster

NAMESPACE = "kubeflow"
DEFAULT = ROOT / "ci" / "01-default-values.yaml"
UNUSUAL = {
    "workspace": {
        "mode": "existingClaim",
        "existingClaim": "1234",
        "uid": 2147483647,
        "gid": 2147483647,
        "init": {"activeDeadlineSeconds": 10000000},
    },
    "timeouts": {"gpuStepSeconds": 10000000},
    "gpu": {
        "tolerations": [
            {
                "key": "nvidia.com/gpu",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 10000000,
            }
        ]
    },
}


@pytest.fixture(scope="module")
def namespace(cluster):
    cluster.fresh_namespace(NAMESPACE)
    yield NAMESPACE
    cluster.delete_namespace(NAMESPACE)


def rendered(release: str, tmp_path, values: dict | None = None) -> str:
    extra = tmp_path / "values.yaml"
    extra.write_text(yaml.safe_dump(values or {}))
    out = subprocess.run(
        [
            helm_binary(),
            "template",
            release,
            str(ROOT),
            "-n",
            NAMESPACE,
            "-f",
            str(DEFAULT),
            "-f",
            str(extra),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize(
    "release, values",
    [("1234", None), ("on", None), ("true", None), ("0x1f", None), ("rel", UNUSUAL)],
    ids=["release-1234", "release-on", "release-true", "release-0x1f", "unusual-values"],
)
def test_what_helm_accepts_on_purpose_the_api_server_accepts(
    cluster, namespace, tmp_path, release, values
):
    docs = [doc for doc in yaml.safe_load_all(rendered(release, tmp_path, values)) if doc]
    # Pods need their ServiceAccount to exist (ServiceAccount admission) and a RoleBinding its
    # Role (RBAC's escalation check): create those for real first.
    first = ("ServiceAccount", "Role")
    accounts = [doc for doc in docs if doc["kind"] in first]
    others = [doc for doc in docs if doc["kind"] not in first]
    cluster.kubectl(
        "create", "-n", namespace, "-f", "-", as_tenant=True, stdin=yaml.safe_dump_all(accounts)
    )
    try:
        result = cluster.kubectl(
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            as_tenant=True,
            check=False,
            stdin=yaml.safe_dump_all(others),
        )
    finally:
        cluster.kubectl(
            "delete", "-n", namespace, "-f", "-", as_tenant=True, stdin=yaml.safe_dump_all(accounts)
        )
    assert result.returncode == 0, result.stderr
    assert "PodSecurity" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == len(others), result.stdout


def test_a_namespace_admin_cannot_grant_kfp_edit_it_does_not_hold(cluster, namespace):
    cluster.apply(kfp_cluster_roles())
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "upload-kfp-edit", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "kubeflow-pipelines-edit",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "rel-tao-kfp-upload", "namespace": namespace}
        ],
    }
    result = cluster.kubectl(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        as_tenant=True,
        check=False,
        stdin=yaml.safe_dump(binding),
    )
    assert result.returncode != 0
    assert "attempting to grant RBAC permissions not currently held" in result.stderr, result.stderr
    assert TENANT in result.stderr


def test_restricted_is_enforced(cluster, namespace):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-pod"},
        "spec": {"containers": [{"name": "c", "image": "localhost/anything"}]},
    }
    result = cluster.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        as_tenant=True,
        check=False,
        stdin=yaml.safe_dump(pod),
    )
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr
