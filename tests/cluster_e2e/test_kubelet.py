"""A real kubelet runs a chart pod (opt-in: `CLUSTER_KUBELET=1 make e2e-cluster`, which starts
hack/cluster/kubelet.sh; otherwise hack/e2e-cluster.sh deselects this file).

The chart's workspace-init pod (init container and container, the specs ConfigMap, emptyDirs,
the workspace claim) is created from its Job template in a namespace enforcing PodSecurity
`restricted`, on node kubelet-1: Kubernetes' kubelet with Debian's containerd and runc, not the
node agent. It must succeed and lay the workspace out on the claim's volume.
"""

from __future__ import annotations

import copy

import pytest
from cluster_helpers import ROOT, wait_until
from test_lifecycle import Scenario

pytestmark = pytest.mark.e2e_cluster

DEFAULT = ROOT / "ci" / "01-default-values.yaml"
NODE = "kubelet-1"


@pytest.fixture
def scenario(cluster, tmp_path):
    setup = Scenario(cluster, DEFAULT, tmp_path)
    yield setup
    setup.close()
    cluster.delete_namespace(setup.namespace)
    for volume in cluster.core.list_persistent_volume().items:  # the static claim's volume
        if volume.metadata.name.startswith(f"{setup.namespace}-"):
            cluster.kubectl("delete", "pv", volume.metadata.name, "--ignore-not-found", check=False)


def test_the_workspace_init_pod_runs_on_a_real_kubelet(cluster, scenario):
    s = scenario
    s.prepare()
    docs = s.template()
    cluster.apply(
        [d for d in docs if d["kind"] == "ConfigMap"], as_tenant=True, namespace=s.namespace
    )
    (job,) = [
        d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("workspace-init")
    ]
    spec = copy.deepcopy(job["spec"]["template"]["spec"])
    (claim,) = [
        v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    ]
    cluster.static_claim(s.namespace, claim)
    spec["nodeSelector"] = {"kubernetes.io/hostname": NODE}
    spec["tolerations"] = [{"key": "tao-kfp.e2e/kubelet", "operator": "Exists"}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "init-on-kubelet"}, "spec": spec}
    cluster.apply([pod], as_tenant=True, namespace=s.namespace)

    def finished():
        live = cluster.core.read_namespaced_pod("init-on-kubelet", s.namespace)
        return live if live.status.phase in ("Succeeded", "Failed") else None

    live = wait_until(finished, 180, f"init-on-kubelet finished\n{cluster.report(s.namespace)}")
    assert live.spec.node_name == NODE
    assert live.status.phase == "Succeeded", live.status
    folder = cluster.state / "static" / s.namespace / claim
    # The default route (current TAO, tao.version 6) reads no workspace spec: the init Job is
    # the layout alone (the TF1 routes' spec step runs in scenario 02's lifecycle).
    assert not (folder / "specs" / "classification_spec.cfg").exists(), sorted(folder.rglob("*"))
    for name in ("models", "specs", "data", "experiments"):
        assert (folder / name).is_dir(), sorted(folder.iterdir())
