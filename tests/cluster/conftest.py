"""Fixtures of the cluster smoke suite: helm, the KFP API and a release in a fresh namespace.

Settings (environment variables, all optional except what `make test-cluster` provides):

- ``KUBECONFIG``: the cluster (hack/kind-up.sh makes one); without it the suite is skipped.
- ``HELM3``: the helm binary (``make`` exports the pinned one); without it the suite is skipped.
- ``TAO_KFP_SMOKE_VALUES``: space-separated values files [hack/kind-values.yaml].
- ``TAO_KFP_SMOKE_KFP_HOST``: KFP API URL reachable from here (e.g. http://localhost:8888).
  Unset: a ``kubectl port-forward`` to ``svc/ml-pipeline`` in ``TAO_KFP_SMOKE_KFP_NAMESPACE``
  [kubeflow] is opened for the module.
- ``TAO_KFP_SMOKE_UPGRADE_SET``: the ``--set`` of the changed-values upgrade [gpu.shmSize=8Gi];
  it must change the pipeline the chart uploads.
- ``TAO_KFP_SMOKE_TIMEOUT``: helm timeout for install/upgrade/test [10m].
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import pykube
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_VERSION = str(yaml.safe_load((ROOT / "Chart.yaml").read_text())["version"])
RELEASE_NAME = "tao-kfp-smoke"  # contains the chart name, so the fullname is the release name
HELM_TIMEOUT = os.environ.get("TAO_KFP_SMOKE_TIMEOUT", "10m")
UPGRADE_SET = os.environ.get("TAO_KFP_SMOKE_UPGRADE_SET", "gpu.shmSize=8Gi")


def _kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def namespace_report(kubeconfig: str, namespace: str) -> str:
    """Pods, Jobs and claims of the namespace plus the tail of each unhealthy pod's log."""
    lines = [_kubectl(kubeconfig, "-n", namespace, "get", "pods,jobs,pvc", "-o", "wide")]
    pods = pykube.Pod.objects(pykube.HTTPClient(pykube.KubeConfig.from_file(kubeconfig))).filter(
        namespace=namespace
    )
    for pod in pods:
        if pod.obj.get("status", {}).get("phase") in ("Running", "Succeeded"):
            continue
        lines.append(f"--- {pod.name} (last 40 log lines) ---")
        lines.append(
            _kubectl(kubeconfig, "-n", namespace, "logs", pod.name, "--all-containers", "--tail=40")
        )
    return "\n".join(lines)


@dataclass
class Release:
    """A Helm release of this chart under test, and the KFP pipeline it uploads."""

    helm: str
    kubeconfig: str
    namespace: str
    name: str
    pipeline_name: str
    values_files: List[str]
    set_values: List[str] = field(default_factory=list)
    chart_version: str = CHART_VERSION
    upgrade_set: str = UPGRADE_SET

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs `helm ARGS --namespace NS`; on failure fails the test with the namespace state."""
        command = [self.helm, *args, "--namespace", self.namespace, "--kubeconfig", self.kubeconfig]
        print("+", shlex.join(command))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n")
        if check and result.returncode != 0:
            pytest.fail(
                f"helm {args[0]} failed (exit {result.returncode}): {result.stderr.strip()}\n"
                f"{namespace_report(self.kubeconfig, self.namespace)}",
                pytrace=False,
            )
        return result

    def install_or_upgrade(self, action: str) -> None:
        """`helm install|upgrade` with the suite's values; returns after the hook Jobs finished.

        No --wait: kind's local-path class binds the claim only once a pod (the post-install
        init Job) uses it. Helm waits for hook Jobs either way.
        """
        values = [arg for path in self.values_files for arg in ("--values", path)]
        sets = [arg for value in self.set_values for arg in ("--set", value)]
        self.run(action, self.name, str(ROOT), *values, *sets, "--timeout", HELM_TIMEOUT)

    def pipeline_versions(self, client) -> Optional[List[str]]:
        """Names of the uploaded pipeline's versions, or None when KFP has no such pipeline."""
        pipeline_id = client.get_pipeline_id(self.pipeline_name)
        if pipeline_id is None:
            return None
        response = client.list_pipeline_versions(pipeline_id=pipeline_id, page_size=200)
        return sorted(v.display_name or v.name for v in response.pipeline_versions or [])


@pytest.fixture(scope="module")
def helm_binary() -> str:
    helm = os.environ.get("HELM3", "")
    if not helm or not os.access(helm, os.X_OK):
        pytest.skip(
            "HELM3 is not set to a helm binary: run `make test-cluster` (it exports pinned helm)"
        )
    return helm


def _client_when_healthy(host: str, attempts: int = 5):
    """kfp.Client checks /healthz when created; a fresh port-forward may drop the first try."""
    import kfp

    for attempt in range(1, attempts + 1):
        try:
            return kfp.Client(host=host)
        except Exception:  # urllib3/HTTP errors while the forward settles
            if attempt == attempts:
                raise
            time.sleep(2)


@pytest.fixture(scope="module")
def kfp_client(kube_cluster) -> Iterator[object]:
    """A kfp.Client on the cluster's KFP API (given host, or a port-forward for the module)."""
    host = os.environ.get("TAO_KFP_SMOKE_KFP_HOST")
    if host:
        yield _client_when_healthy(host)
        return
    namespace = os.environ.get("TAO_KFP_SMOKE_KFP_NAMESPACE", "kubeflow")
    # ":8888" lets kubectl pick a free local port, which it prints on its first line.
    forward = subprocess.Popen(
        ["kubectl", "--kubeconfig", kube_cluster.kube_config_path, "-n", namespace,
         "port-forward", "svc/ml-pipeline", ":8888"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    first_line = forward.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", first_line)
    if not match:
        forward.kill()
        pytest.fail(
            f"kubectl port-forward to svc/ml-pipeline in {namespace} failed: "
            f"{first_line}{forward.stderr.read()}  (is KFP installed? hack/kind-up.sh installs it)",
            pytrace=False,
        )
    # Keep reading kubectl's "Handling connection" lines so its pipes never fill up.
    for pipe in (forward.stdout, forward.stderr):
        threading.Thread(target=pipe.read, daemon=True).start()
    try:
        yield _client_when_healthy(f"http://127.0.0.1:{match.group(1)}")
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _delete_pipeline(client, pipeline_name: str) -> None:
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        return
    response = client.list_pipeline_versions(pipeline_id=pipeline_id, page_size=200)
    for version in response.pipeline_versions or []:
        client.delete_pipeline_version(pipeline_id, version.pipeline_version_id)
    client.delete_pipeline(pipeline_id)


@pytest.fixture(scope="module")
def release(kube_cluster, random_namespace, helm_binary, kfp_client) -> Iterator[Release]:
    """A release to install in a fresh namespace; uninstalled and its pipeline deleted after."""
    namespace = random_namespace.name
    values = os.environ.get("TAO_KFP_SMOKE_VALUES", str(ROOT / "hack" / "kind-values.yaml")).split()
    pipeline_name = f"{RELEASE_NAME}-{namespace}"  # unique: KFP pipelines are cluster-wide
    subject = Release(
        helm=helm_binary,
        kubeconfig=kube_cluster.kube_config_path,
        namespace=namespace,
        name=RELEASE_NAME,
        pipeline_name=pipeline_name,
        values_files=values,
        # The chart installs only where KFP runs pipeline pods (kubeflow); the smoke suite runs
        # no pipeline, and a fresh namespace per run keeps releases apart, so it names that
        # namespace as KFP's pod namespace (the escape hatch kfp.pipelineNamespace).
        set_values=[f"upload.pipelineName={pipeline_name}", f"kfp.pipelineNamespace={namespace}"],
    )
    yield subject
    subject.run("uninstall", RELEASE_NAME, "--ignore-not-found", "--wait", check=False)
    _delete_pipeline(kfp_client, pipeline_name)
