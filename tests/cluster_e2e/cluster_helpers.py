"""Shared parts of `make e2e-cluster` (hack/e2e-cluster.sh): the control plane it started.

The suite runs only through `make e2e-cluster`, which builds and starts the control plane
(hack/cluster/up.sh), the nodes and the node agent, then points ``CLUSTER_ENV`` at the
cluster's env file. Without it every test fails (never skips): `make test` deselects the
``e2e_cluster`` marker instead. docs/cluster-harness.md says what each part relies on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

TENANT = "tenant"  # the installing user (a client certificate, no groups)
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def read_env() -> Dict[str, str]:
    path = os.environ.get("CLUSTER_ENV")
    if not path or not Path(path).is_file():
        pytest.fail("CLUSTER_ENV is not set: run this suite through `make e2e-cluster`")
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@dataclass
class Cluster:
    env: Dict[str, str]

    def __post_init__(self):
        self.admin_api = config.new_client_from_config(self.env["CLUSTER_ADMIN_KUBECONFIG"])
        self.core = client.CoreV1Api(self.admin_api)
        self.rbac = client.RbacAuthorizationV1Api(self.admin_api)
        self.auth = client.AuthenticationV1Api(self.admin_api)
        self.apps = client.AppsV1Api(self.admin_api)
        self.state = Path(self.env["CLUSTER_DIR"])

    @property
    def kubectl_path(self) -> str:
        return str(Path(self.env["CLUSTER_BIN"]) / "kubectl")

    def kubectl(self, *args: str, as_tenant: bool = False, check: bool = True, stdin=None):
        kubeconfig = self.env[
            "CLUSTER_TENANT_KUBECONFIG" if as_tenant else "CLUSTER_ADMIN_KUBECONFIG"
        ]
        result = subprocess.run(
            [self.kubectl_path, "--kubeconfig", kubeconfig, *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)}: {result.stderr}", pytrace=False)
        return result

    def apply(self, docs: List[dict], as_tenant: bool = False, namespace: Optional[str] = None):
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self.kubectl(*args, as_tenant=as_tenant, stdin=yaml.safe_dump_all(docs))

    def token_review(self, token: str, audience: str) -> bool:
        """What KFP's API server does with a Bearer token in multi-user mode."""
        review = self.auth.create_token_review({"spec": {"token": token, "audiences": [audience]}})
        return bool(review.status.authenticated)

    def fresh_namespace(self, name: str, labels: Optional[Dict[str, str]] = None) -> None:
        """A namespace labelled for PodSecurity (`restricted` unless ``labels`` say otherwise),
        its admin role bound to the tenant."""
        self.delete_namespace(name)
        self.core.create_namespace({"metadata": {"name": name, "labels": labels or RESTRICTED}})
        self.admit_tenant(name, labels)

    def admit_tenant(self, name: str, labels: Optional[Dict[str, str]] = None) -> None:
        """Labels an existing namespace for PodSecurity and binds its admin role to the tenant."""
        self.core.patch_namespace(name, {"metadata": {"labels": labels or RESTRICTED}})
        self.delete_quietly(self.rbac.delete_namespaced_role_binding, "tenant-admin", name)
        self.rbac.create_namespaced_role_binding(
            name,
            {
                "metadata": {"name": "tenant-admin"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "admin",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}
                ],
            },
        )
        # kube-controller-manager publishes the cluster CA into every namespace.
        wait_until(
            lambda: self.exists(self.core.read_namespaced_config_map, "kube-root-ca.crt", name),
            60,
            f"kube-root-ca.crt in {name}",
        )

    def static_claim(self, namespace: str, name: str) -> None:
        """An admin's static hostPath volume (PV `<namespace>-<name>`, Retain) and the tenant's
        claim bound to it, as for an existing claim; waits until the claim is Bound."""
        folder = self.state / "static" / namespace / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        pv_name = f"{namespace}-{name}"
        self.kubectl("delete", "pv", pv_name, "--ignore-not-found", "--wait=false")
        self.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": pv_name},
                    "spec": {
                        "capacity": {"storage": "100Gi"},
                        "accessModes": ["ReadWriteMany"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": "",
                        "hostPath": {"path": str(folder), "type": "Directory"},
                        "claimRef": {"namespace": namespace, "name": name},
                    },
                }
            ]
        )
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv_name,
                "resources": {"requests": {"storage": "100Gi"}},
            },
        }
        self.apply([claim], as_tenant=True, namespace=namespace)
        wait_until(
            lambda: (
                self.core.read_namespaced_persistent_volume_claim(name, namespace).status.phase
                == "Bound"
            ),
            60,
            f"claim {namespace}/{name} bound to {pv_name}",
        )

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name)
        except ApiException as err:
            if err.status == 404:
                return
            raise
        wait_until(
            lambda: not self.exists(self.core.read_namespace, name),
            180,
            f"namespace {name} deleted",
        )

    @staticmethod
    def delete_quietly(delete, *args) -> None:
        try:
            delete(*args)
        except ApiException as err:
            if err.status != 404:
                raise

    @staticmethod
    def exists(read, *args) -> bool:
        try:
            read(*args)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def pod_log(self, namespace: str, pod: str) -> str:
        path = self.state / "pod-logs" / f"{namespace}_{pod}.log"
        return path.read_text() if path.is_file() else ""

    def pod_logs(self, namespace: str) -> Dict[str, str]:
        return {
            path.name[len(namespace) + 1 : -4]: path.read_text()
            for path in (self.state / "pod-logs").glob(f"{namespace}_*.log")
        }

    def report(self, namespace: str) -> str:
        """Pods, Jobs, claims, events and the agent's pod logs of a namespace, for failures."""
        lines = [
            self.kubectl(
                "get", "pods,jobs,pvc,events", "-n", namespace, "-o", "wide", check=False
            ).stdout,
        ]
        for pod, log in self.pod_logs(namespace).items():
            lines.append(f"--- {pod} (last 30 lines) ---\n" + "\n".join(log.splitlines()[-30:]))
        agent = self.state / "log" / "node-agent.log"
        if agent.is_file() and agent.stat().st_size:
            tail = agent.read_text().splitlines()[-20:]
            lines.append("--- node agent (last 20 lines) ---\n" + "\n".join(tail))
        return "\n".join(lines)


def wait_until(predicate, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {seconds}s waiting for {what}", pytrace=False)


def helm_binary() -> str:
    path = os.environ.get("HELM3") or str(ROOT / ".tools" / "helm-3.18.0" / "helm")
    if not Path(path).is_file():
        pytest.fail(f"helm not found at {path}: run `make tools`")
    return path


def json_of(result) -> dict:
    return json.loads(result.stdout)
