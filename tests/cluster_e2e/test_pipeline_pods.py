"""Pipeline pods as KFP's own driver builds them, under real admission and scheduling.

The pod of every task comes from the KFP backends harness (`make kfp-backends`, which writes
`out/kfp-backends/<version>/pods/<task-key>.json`); the newest version there is used
(hack/e2e-cluster.sh runs the harness for 2.0.5, the one backend the Go module proxy serves,
when no version has pods). Each pod is created, as the namespace admin, in a namespace that
enforces PodSecurity `baseline` and warns at `restricted`, the levels Kubeflow gives a profile
namespace (kubeflow/manifests tests/kubeflow_profile_install.sh labels it enforce=baseline).
Checked, by the API server and kube-scheduler themselves:
- PodSecurity admits every pod, and its `restricted` verdict is the one docs/cluster-harness.md
  states (KFP's driver sets no securityContext that `restricted` asks for);
- a CPU step is bound only to the CPU node; a GPU step, with the tolerations the package
  declares, only to the GPU pool whose labels and taints it matches; on a backend whose driver
  drops tolerations (before 2.1.0) it stays Pending on the taint, as the backends matrix says;
- a GPU step without its toleration fails the placement check (a deliberate breakage);
- a GPU count larger than any node's stays Pending with the scheduler's FailedScheduling.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import yaml
from cluster_helpers import ROOT, Cluster, wait_until
from test_lifecycle import DEFAULT_GPU_POOL

from tao_kfp.kfp_backends import EXECUTOR_FIELDS, KfpBackend

pytestmark = pytest.mark.e2e_cluster

BACKENDS_OUT = ROOT / "out" / "kfp-backends"
PACKAGE = ROOT / "files" / "pipelines" / "tao-classification.yaml"
NAMESPACE = "kubeflow"
PROFILE_LEVELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}
# What PodSecurity `restricted` asks of every driver-built pod (docs/cluster-harness.md).
RESTRICTED_GAPS = [
    "allowPrivilegeEscalation != false",
    "unrestricted capabilities",
    "runAsNonRoot != true",
    "seccompProfile",
]
CPU_NODES = {"cpu-1"}
TASK_LABEL = "tao-kfp/harness-task"


@functools.cache
def newest_driver_pods() -> Tuple[KfpBackend, Path]:
    """The newest backend version whose driver-built pods the harness wrote, and their folder."""
    found = sorted(
        (KfpBackend.parse(path.parent.name), path)
        for path in BACKENDS_OUT.glob("*/pods")
        if any(path.glob("*.json"))
    )
    if not found:
        pytest.fail(
            f"no driver-built pods in {BACKENDS_OUT.relative_to(ROOT)}/*/pods: run "
            "`make kfp-backends` (hack/e2e-cluster.sh runs it for 2.0.5)",
            pytrace=False,
        )
    return found[-1]


def driver_pods() -> Dict[str, dict]:
    """Task key -> the pod KFP's driver built for it, named after the task."""
    pods = {}
    for path in sorted(newest_driver_pods()[1].glob("*.json")):
        doc = json.loads(path.read_text())
        task = doc.get("metadata", {}).get("labels", {}).get(TASK_LABEL, path.stem)
        name = "task-" + re.sub(r"[^a-z0-9-]+", "-", task.lower()).strip("-")[:50]
        pods[task] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {TASK_LABEL: task}},
            "spec": copy.deepcopy(doc.get("spec", doc)),
        }
    return pods


def declared_tolerations() -> Dict[str, List[dict]]:
    """Task key -> the tolerations the compiled package declares for it (kfp-kubernetes)."""
    spec, platform = list(yaml.safe_load_all(PACKAGE.read_text()))[:2]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    labels = {name: c.get("executorLabel") for name, c in spec["components"].items()}
    out = {}
    for task, body in spec["root"]["dag"]["tasks"].items():
        executor = executors.get(labels[body["componentRef"]["name"]], {})
        out[task] = [
            {k: v for k, v in t.items() if k in ("key", "operator", "value", "effect")}
            for t in executor.get("tolerations", [])
        ]
    return out


def gpu_resource(pod: dict) -> Tuple[Optional[dict], Optional[str]]:
    for container in pod["spec"]["containers"]:
        for name in (container.get("resources") or {}).get("limits") or {}:
            if name.startswith("nvidia.com/"):
                return container, name
    return None, None


def failed_scheduling(cluster: Cluster, namespace: str, name: str) -> List[str]:
    events = cluster.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    ).items
    return [e.message for e in events if e.reason == "FailedScheduling"]


def check_placed(cluster: Cluster, namespace: str, name: str, nodes: set) -> str:
    """The suite's placement check: the pod is bound, to one of ``nodes``."""

    def bound_or_refused():
        node = cluster.core.read_namespaced_pod(name, namespace).spec.node_name
        return node or failed_scheduling(cluster, namespace, name)

    verdict = wait_until(bound_or_refused, 60, f"{name} bound or refused by kube-scheduler")
    assert isinstance(verdict, str), f"{name} not scheduled: {verdict}"
    assert verdict in nodes, f"{name} bound to {verdict}, not to {sorted(nodes)}"
    return verdict


def check_pending_on(cluster: Cluster, namespace: str, name: str, reason: str) -> None:
    messages = wait_until(
        lambda: failed_scheduling(cluster, namespace, name), 60, f"FailedScheduling of {name}"
    )
    assert reason in " ".join(messages), messages
    live = cluster.core.read_namespaced_pod(name, namespace)
    assert live.status.phase == "Pending" and not live.spec.node_name


def create(cluster: Cluster, namespace: str, pod: dict) -> str:
    """Creates the pod as the namespace admin; returns the API's warnings."""
    result = cluster.kubectl(
        "create", "-n", namespace, "-f", "-", as_tenant=True, check=False, stdin=json.dumps(pod)
    )
    assert result.returncode == 0, f"{pod['metadata']['name']} refused: {result.stderr}"
    return result.stderr


def with_tolerations(pod: dict, tolerations: List[dict], name: str) -> dict:
    pod = copy.deepcopy(pod)
    pod["metadata"]["name"] = name
    pod["spec"]["tolerations"] = tolerations
    if not tolerations:
        del pod["spec"]["tolerations"]
    return pod


@pytest.fixture(scope="module")
def namespace(cluster):
    pods = driver_pods()  # fails, naming the fix, when the harness wrote none
    cluster.fresh_namespace(NAMESPACE, labels=PROFILE_LEVELS)
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for pod in pods.values()
        for v in pod["spec"].get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    for claim in claims:
        cluster.static_claim(NAMESPACE, claim)
    yield NAMESPACE
    cluster.delete_namespace(NAMESPACE)
    for claim in claims:
        cluster.kubectl("delete", "pv", f"{NAMESPACE}-{claim}", "--ignore-not-found", check=False)


def test_driver_pods_are_admitted_and_placed(cluster, namespace):
    pods = driver_pods()
    tolerations = declared_tolerations()
    gpu_steps = [task for task, pod in pods.items() if gpu_resource(pod)[1]]
    assert gpu_steps and len(gpu_steps) < len(pods), f"GPU steps: {gpu_steps}"
    backend = newest_driver_pods()[0]
    drops_tolerations = backend.version < EXECUTOR_FIELDS["tolerations"]

    verdicts = {task: create(cluster, namespace, pod) for task, pod in pods.items()}
    assert not [w for w in verdicts.values() if 'violate PodSecurity "baseline' in w], verdicts
    for task, warning in verdicts.items():
        missing = [gap for gap in RESTRICTED_GAPS if gap not in warning]
        assert 'would violate PodSecurity "restricted:latest"' in warning and not missing, (
            f"{task} ({backend}): restricted's verdict changed, update "
            f"docs/cluster-harness.md: {warning!r}"
        )

    for task, pod in pods.items():
        name = pod["metadata"]["name"]
        if task not in gpu_steps:
            check_placed(cluster, namespace, name, CPU_NODES)
        elif drops_tolerations:
            # The backends matrix's "GPU steps carry no tolerations", as the scheduler sees it.
            assert not pod["spec"].get("tolerations"), f"{task}: {backend} kept tolerations"
            check_pending_on(cluster, namespace, name, "untolerated taint")
        else:
            assert pod["spec"].get("tolerations") == tolerations[task], task
            check_placed(cluster, namespace, name, DEFAULT_GPU_POOL)

    # Every GPU step with the tolerations the package declares (what the driver applies from
    # 2.1.0): only the pool they match, never the MIG pool their selector also matches.
    for task in gpu_steps:
        name = f"{pods[task]['metadata']['name']}-tol"[:63]
        create(cluster, namespace, with_tolerations(pods[task], tolerations[task], name))
        check_placed(cluster, namespace, name, DEFAULT_GPU_POOL)


def test_gpu_step_without_its_toleration_fails_the_placement_check(cluster, namespace):
    """Deliberate breakage: the scenario's toleration removed from a GPU step."""
    pods = driver_pods()
    task = next(task for task, pod in pods.items() if gpu_resource(pod)[1])
    name = "broken-no-toleration"
    create(cluster, namespace, with_tolerations(pods[task], [], name))
    with pytest.raises(AssertionError, match="untolerated taint"):
        check_placed(cluster, namespace, name, DEFAULT_GPU_POOL)


def test_more_gpus_than_any_node_stays_pending(cluster, namespace):
    pods = driver_pods()
    tolerations = declared_tolerations()
    task = next(task for task, pod in pods.items() if gpu_resource(pod)[1])
    pod = with_tolerations(pods[task], tolerations[task], "too-many-gpus")
    container, resource = gpu_resource(pod)
    container["resources"]["limits"][resource] = "99"
    container["resources"].setdefault("requests", {})[resource] = "99"
    create(cluster, namespace, pod)
    check_pending_on(cluster, namespace, "too-many-gpus", f"Insufficient {resource}")
