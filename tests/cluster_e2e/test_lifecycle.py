"""Each ci/ scenario through the whole helm lifecycle on the real control plane, installed by a
user bound only to the namespace's `admin` ClusterRole (plus what the scenario asks for):
install, test, upgrade with a changed value, rollback, uninstall, reinstall adopting the kept
claim. The hook Jobs and test pods run for real on the node agent's node (podman); the KFP API
is the double of tests/doubles/kfp_api.py (multi-user: it checks the projected token with
the API server's TokenReview, as KFP's server does).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import List, Optional

import pytest
import yaml
from cluster_helpers import ROOT, TENANT, Cluster, helm_binary, wait_until
from e2e_helpers import image, scenario_namespace
from kubernetes import client
from test_chart_pods import dataset_server, versions

from doubles.kfp_api import FakeKfpApi

pytestmark = pytest.mark.e2e_cluster

SCENARIOS = sorted((ROOT / "ci").glob("*-values.yaml"))
RELEASE = "rel"
HELM_TIMEOUT = "5m"
KFP_AUDIENCE = "pipelines.kubeflow.org"
LABEL = f"app.kubernetes.io/instance={RELEASE}"


def kfp_module_dir() -> Path:
    """The module's source folder, downloaded and checked against its go.sum when missing."""
    out = subprocess.run(
        [str(ROOT / "hack" / "cluster" / "module-dir.sh"), "kfp", "github.com/kubeflow/pipelines"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        pytest.fail(f"KFP's manifests module: {out.stderr}", pytrace=False)
    return Path(out.stdout.strip())


def kfp_cluster_roles() -> List[dict]:
    """kubeflow-pipelines-edit/-view and their aggregated rules, from KFP's own manifests."""
    path = (
        kfp_module_dir()
        / "manifests/kustomize/base/installs/multi-user/view-edit-cluster-roles.yaml"
    )
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def cluster_role(name: str, rules: List[dict]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    }


def bind(kind: str, role: str, name: str, namespace: str = "") -> dict:
    doc = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}],
    }
    return doc


# What each scenario asks a cluster admin for beyond the namespace admin role: the
# cluster-scoped objects it creates. Nothing else cluster-scoped may appear.
CLUSTER_GRANTS = {
    "02-nfs-values": (
        [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["*"]}],
        {"PersistentVolume"},
    ),
    "04-mig-custom-selector-values": (
        [
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles", "clusterrolebindings"],
                "verbs": ["*"],
            },
            # RBAC lets a user grant only what it holds: the test's ClusterRole lists nodes.
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        ],
        {"ClusterRole", "ClusterRoleBinding"},
    ),
}
CLUSTER_KINDS = [
    ("persistentvolumes", "PersistentVolume"),
    ("clusterroles.rbac.authorization.k8s.io", "ClusterRole"),
    ("clusterrolebindings.rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storageclasses.storage.k8s.io", "StorageClass"),
    ("namespaces", "Namespace"),
    ("priorityclasses.scheduling.k8s.io", "PriorityClass"),
    ("customresourcedefinitions.apiextensions.k8s.io", "CustomResourceDefinition"),
    ("mutatingwebhookconfigurations.admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    (
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
]


class Scenario:
    """One ci/ scenario: its namespace prepared by the admin, the KFP API, the helm calls.

    The KFP API is the double (tests/doubles/kfp_api.py) unless ``kfp`` gives a running one
    (an object with ``url`` and ``stop()``: make e2e-kfp's real server). ``kfp_roles``: apply
    KFP's kubeflow-pipelines-edit/-view from the manifests module (False where the server's own
    release applied them). ``reuse_namespace``: the namespace exists and is kept (KFP's own
    `kubeflow`), so it is labelled and the tenant bound there instead of recreating it.
    """

    def __init__(
        self,
        cluster: Cluster,
        values_file: Path,
        tmp: Path,
        chart: Path = ROOT,
        kfp=None,
        kfp_roles: bool = True,
        reuse_namespace: bool = False,
        extra_values: Optional[dict] = None,
    ):
        self.cluster, self.values_file, self.tmp, self.chart = cluster, values_file, tmp, chart
        self.kfp_roles, self.reuse_namespace = kfp_roles, reuse_namespace
        self.name = values_file.stem
        self.namespace = scenario_namespace(values_file)
        self.values = yaml.safe_load(values_file.read_text()) or {}
        kfp_values = self.values.get("kfp", {})
        multi_user = kfp_values.get("mode") == "multiUser"
        https = str(kfp_values.get("host", "")).startswith("https://")
        tls = (cluster.env["CLUSTER_HOST_SERVICE_CERT"], cluster.env["CLUSTER_HOST_SERVICE_KEY"])
        if kfp is None:
            kfp = FakeKfpApi(
                multi_user=multi_user,
                token=(lambda t: cluster.token_review(t, KFP_AUDIENCE)) if multi_user else None,
                tls=tls if https else None,
            ).start()
        self.kfp = kfp
        overrides = {
            "images": {
                "tools": {
                    "repository": image("tools").rsplit(":", 1)[0],
                    "tag": image("tools").rsplit(":", 1)[1],
                    "digest": "",
                }
            },
            "kfp": {"host": self.kfp.url, "pipelineNamespace": self.namespace},
        }
        self.servers = []
        if self.values.get("workspace", {}).get("init", {}).get("datasetUrl"):
            server, url, digest = dataset_server(tmp)
            self.servers.append(server)
            overrides["workspace"] = {"init": {"datasetUrl": url, "datasetSha256": digest}}
        for key, value in (extra_values or {}).items():
            overrides[key] = {**overrides.get(key, {}), **value}
        self.overrides = tmp / "overrides.yaml"
        self.overrides.write_text(yaml.safe_dump(overrides))
        self.log: List[str] = []

    def close(self):
        self.kfp.stop()
        for server in self.servers:
            server.shutdown()

    # -- what the cluster admin and the user set up before installing --------------------------

    def prepare(self) -> None:
        c = self.cluster
        if self.reuse_namespace:
            c.admit_tenant(self.namespace)
        else:
            c.fresh_namespace(self.namespace)
        grant = CLUSTER_GRANTS.get(self.name)
        if grant:
            role = f"tenant-{self.name}"
            c.apply([cluster_role(role, grant[0]), bind("ClusterRole", role, role)])
        if self.values.get("kfp", {}).get("mode") == "multiUser":
            # A Kubeflow profile owner holds kubeflow-pipelines-edit in the profile namespace
            # (kubeflow-admin aggregates kubeflow-edit, which aggregates it): without it RBAC
            # refuses the chart's RoleBinding to that role (test_multi_user.py shows it).
            if self.kfp_roles:
                c.apply(kfp_cluster_roles())
            c.apply(
                [bind("ClusterRole", "kubeflow-pipelines-edit", "tenant-kfp-edit", self.namespace)]
            )
        workspace = self.values.get("workspace", {})
        if workspace.get("storageClass"):
            # The class the scenario names, as its cluster would have it: local-path again.
            c.apply(
                [
                    {
                        "apiVersion": "storage.k8s.io/v1",
                        "kind": "StorageClass",
                        "metadata": {"name": workspace["storageClass"]},
                        "provisioner": "rancher.io/local-path",
                        "volumeBindingMode": "WaitForFirstConsumer",
                        "reclaimPolicy": "Delete",
                    }
                ]
            )
        if workspace.get("mode") == "existingClaim":
            # Scenario 03: the admin's static volume and the user's claim bound to it.
            c.static_claim(self.namespace, workspace["existingClaim"])
        ngc = self.values.get("ngc", {})
        user_secrets = []
        if ngc.get("existingSecret"):
            keys = ngc.get("secretKeys", {})
            user_secrets.append(
                secret(
                    ngc["existingSecret"],
                    {
                        keys.get("apiKey", "NGC_API_KEY"): "k",
                        keys.get("modelKey", "NGC_MODEL_KEY"): "m",
                    },
                )
            )
        for name in [ngc.get("existingPullSecret")] + list(self.values.get("imagePullSecrets", [])):
            if name:
                user_secrets.append(
                    secret(
                        name,
                        {".dockerconfigjson": '{"auths": {}}'},
                        "kubernetes.io/dockerconfigjson",
                    )
                )
        if user_secrets:
            c.apply(user_secrets, as_tenant=True, namespace=self.namespace)

    # -- helm as the tenant ------------------------------------------------------------------

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [
            helm_binary(),
            *args,
            "--namespace",
            self.namespace,
            "--kubeconfig",
            self.cluster.env["CLUSTER_TENANT_KUBECONFIG"],
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        self.log.append(f"$ helm {' '.join(args)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        if check and result.returncode != 0:
            pytest.fail(
                f"{self.name}: helm {args[0]} failed (exit {result.returncode}):\n"
                f"{result.stderr}\n{self.cluster.report(self.namespace)}",
                pytrace=False,
            )
        return result

    def install(
        self, action: str = "install", *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess:
        return self.helm(
            action,
            RELEASE,
            str(self.chart),
            "-f",
            str(self.values_file),
            "-f",
            str(self.overrides),
            "--timeout",
            HELM_TIMEOUT,
            *extra,
            check=check,
        )

    def template(self) -> List[dict]:
        """What Helm renders for the scenario (hooks and test pods included)."""
        values = ["-f", str(self.values_file), "-f", str(self.overrides)]
        out = self.helm("template", RELEASE, str(self.chart), *values)
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    # -- checks -------------------------------------------------------------------------------

    def pod_templates_admitted(self) -> None:
        """Every pod the chart makes (Job/DaemonSet templates, test pods) passes a server-side
        dry run in the namespace, as the tenant: PodSecurity `restricted` enforced."""
        pods = []
        for doc in self.template():
            if not doc or doc["kind"] not in ("Job", "DaemonSet", "Pod"):
                continue
            template = doc if doc["kind"] == "Pod" else doc["spec"]["template"]
            spec = dict(template["spec"], serviceAccountName="default")
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"preflight-{doc['kind'].lower()}-{doc['metadata']['name']}"[:63]
                    },
                    "spec": spec,
                }
            )
        result = self.cluster.kubectl(
            "create",
            "--dry-run=server",
            "-n",
            self.namespace,
            "-f",
            "-",
            as_tenant=True,
            check=False,
            stdin=yaml.safe_dump_all(pods),
        )
        assert result.returncode == 0 and "PodSecurity" not in result.stderr, (
            f"{self.name}: PodSecurity refuses chart pods:\n{result.stderr}"
        )

    def no_pod_refused(self) -> None:
        """PodSecurity refused nothing: no FailedCreate event and no warning from the API."""
        events = self.cluster.core.list_namespaced_event(self.namespace).items
        refused = [
            f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}"
            for e in events
            # FailedScheduling is no refusal: a static claim binds a moment after the hook Job's
            # pod exists (scenario 02), and the scheduler retries.
            if e.reason == "FailedCreate" or "PodSecurity" in (e.message or "")
        ]
        assert not refused, "\n".join(refused)
        warnings = [
            line
            for entry in self.log
            for line in entry.splitlines()
            if "PodSecurity" in line or line.startswith("W") and "would violate" in line
        ]
        assert not warnings, "\n".join(warnings)

    def cluster_scoped(self) -> dict:
        """Cluster-scoped objects of this release, by kind."""
        found = {}
        for resource, kind in CLUSTER_KINDS:
            out = self.cluster.kubectl("get", resource, "-l", LABEL, "-o", "name", check=False)
            names = [line for line in out.stdout.splitlines() if line]
            if names:
                found[kind] = names
        return found

    def claim(self):
        claims = self.cluster.core.list_namespaced_persistent_volume_claim(self.namespace).items
        return {c.metadata.name: c for c in claims}


@pytest.fixture(params=SCENARIOS, ids=lambda p: p.stem)
def scenario(request, cluster, tmp_path):
    setup = Scenario(cluster, request.param, tmp_path)
    yield setup
    setup.close()
    cluster.delete_namespace(setup.namespace)
    # The scenario's cluster-scoped grants end with it: the next scenario gets none of them.
    grant = f"tenant-{setup.name}"
    cluster.kubectl(
        "delete", "clusterrolebinding,clusterrole", grant, "--ignore-not-found", check=False
    )
    # Volumes the scenario left (Retain): the chart's NFS volume, the static one of scenario 03.
    cluster.kubectl("delete", "pv", "-l", LABEL, "--ignore-not-found", check=False)
    cluster.kubectl(
        "delete", "pv", f"{setup.namespace}-team-tao-data", "--ignore-not-found", check=False
    )


def secret(name: str, data: dict, kind: str = "Opaque") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": kind,
        "stringData": data,
    }


def test_helm_lifecycle(cluster, scenario):
    s = scenario
    s.prepare()
    allowed_kinds = CLUSTER_GRANTS.get(s.name, ([], set()))[1]

    # PodSecurity judges a Job's pods only when the Job controller creates them (the Job itself
    # gets a warning): ask for each pod template's verdict first, so a refused pod fails here in
    # seconds instead of as a helm timeout.
    s.pod_templates_admitted()

    # install: the hook Jobs (workspace init, upload) ran for real and Helm waited on them
    s.install()
    logs = cluster.pod_logs(s.namespace)
    assert any("workspace-init" in pod for pod in logs), f"the init Job ran no pod: {sorted(logs)}"
    assert any("upload" in pod for pod in logs), f"the upload Job ran no pod: {sorted(logs)}"
    installed = versions(s.kfp)
    assert installed, f"{s.name}: the upload Job uploaded nothing"
    claims = s.claim()
    for name, claim in claims.items():
        assert claim.status.phase == "Bound", f"claim {name} is {claim.status.phase}"
    found = s.cluster_scoped()
    assert set(found) <= allowed_kinds, f"{s.name} created cluster-scoped {found}"
    if s.values.get("prepull", {}).get("enabled"):
        prepull_runs_only_on_the_gpu_pool(cluster, s)
    if s.values.get("kfp", {}).get("mode") == "multiUser":
        upload_can_do_exactly_what_it_needs(cluster, s)

    # helm test: every test pod ran for real and passed
    s.helm("test", RELEASE, "--timeout", HELM_TIMEOUT)
    test_pods = [pod for pod in cluster.pod_logs(s.namespace) if "-test-" in pod]
    assert test_pods, "helm test ran no pod"
    found = s.cluster_scoped()
    assert set(found) <= allowed_kinds, f"{s.name} left cluster-scoped {found} after helm test"

    # upgrade with a changed value: a new pipeline version is uploaded
    s.install("upgrade", "--set", "gpu.shmSize=12Gi")
    upgraded = versions(s.kfp)
    assert len(upgraded) > len(installed), "the upgrade uploaded no new pipeline version"
    # rollback to the first revision: its hooks run again
    s.helm("rollback", RELEASE, "1", "--wait", "--timeout", HELM_TIMEOUT)
    s.no_pod_refused()

    # uninstall: the claim stays when workspace.keep (the default)
    keep = s.values.get("workspace", {}).get("keep", True)
    mode = s.values.get("workspace", {}).get("mode", "dynamic")
    before = s.claim()
    s.helm("uninstall", RELEASE, "--wait", "--timeout", HELM_TIMEOUT)
    after = s.claim()
    if mode == "existingClaim":
        assert set(after) == set(before), "uninstall touched the user's own claim"
    elif keep:
        assert set(after) == set(before), (
            f"uninstall deleted the kept claim: {set(before) - set(after)}"
        )
    else:
        wait_until(lambda: not s.claim(), 60, "the claim deleted by uninstall (keep: false)")

    # reinstall: Helm adopts the kept claim (same object, same volume)
    s.install()
    again = s.claim()
    for name, claim in before.items():
        if name in after:
            assert again[name].metadata.uid == claim.metadata.uid, f"claim {name} was recreated"
            assert again[name].spec.volume_name == claim.spec.volume_name
    s.no_pod_refused()
    s.helm("uninstall", RELEASE, "--wait", "--timeout", HELM_TIMEOUT)


# The GPU pools of hack/cluster/nodes.yaml each scenario's gpu.nodeSelector/tolerations target.
GPU_POOL = {"04-mig-custom-selector-values": {"gpu-mig-1"}}
DEFAULT_GPU_POOL = {"gpu-a100-1", "gpu-a100-2"}


def prepull_runs_only_on_the_gpu_pool(cluster: Cluster, s: Scenario) -> None:
    """The pre-pull DaemonSet (same selector and tolerations as the GPU steps) gets one pod on
    each node of the scenario's GPU pool and none elsewhere: DaemonSet controller and scheduler."""
    expected = GPU_POOL.get(s.name, DEFAULT_GPU_POOL)

    def placed():
        pods = cluster.core.list_namespaced_pod(s.namespace, label_selector=LABEL).items
        nodes = {
            p.spec.node_name
            for p in pods
            if p.metadata.owner_references
            and p.metadata.owner_references[0].kind == "DaemonSet"
            and p.spec.node_name
        }
        return nodes if len(nodes) >= len(expected) else None

    nodes = wait_until(
        placed, 60, f"pre-pull pods on {sorted(expected)}\n{cluster.report(s.namespace)}"
    )
    assert nodes == expected, f"pre-pull pods on {sorted(nodes)}, GPU pool is {sorted(expected)}"


# What `tao-kfp upload` asks KFP for (pipeline, version, experiment, run, recurring run; the
# listing that finds them) as the resource attributes KFP's server checks with a
# SubjectAccessReview in the profile namespace.
UPLOAD_NEEDS = [
    ("create", "pipelines.pipelines.kubeflow.org", ""),
    ("list", "pipelines.pipelines.kubeflow.org", ""),
    ("get", "pipelines.pipelines.kubeflow.org", ""),
    ("create", "pipelines.pipelines.kubeflow.org", "versions"),
    ("list", "pipelines.pipelines.kubeflow.org", "versions"),
    ("create", "experiments.pipelines.kubeflow.org", ""),
    ("list", "experiments.pipelines.kubeflow.org", ""),
    ("create", "runs.pipelines.kubeflow.org", ""),
    ("create", "jobs.pipelines.kubeflow.org", ""),
    ("list", "jobs.pipelines.kubeflow.org", ""),
    ("disable", "jobs.pipelines.kubeflow.org", ""),
    ("delete", "jobs.pipelines.kubeflow.org", ""),
]
# What any authenticated identity may do (system:basic-user, system:discovery, ...).
EVERYONE = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}


def upload_can_do_exactly_what_it_needs(cluster: Cluster, s: Scenario) -> None:
    """SubjectAccessReview (kubectl auth can-i --as) for the upload Job's ServiceAccount."""
    accounts = cluster.core.list_namespaced_service_account(s.namespace, label_selector=LABEL).items
    upload = [a.metadata.name for a in accounts if a.metadata.name.endswith("-upload")]
    assert len(upload) == 1, f"upload ServiceAccount: {[a.metadata.name for a in accounts]}"
    who = f"system:serviceaccount:{s.namespace}:{upload[0]}"

    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{s.namespace}",
        "system:authenticated",
    ]

    def can(verb, resource, sub="", namespace=s.namespace):
        """A SubjectAccessReview, as KFP's server makes one per API call (namespace "" = all)."""
        name, _, group = resource.partition(".")
        review = client.AuthorizationV1Api(cluster.admin_api).create_subject_access_review(
            {
                "spec": {
                    "user": who,
                    "groups": groups,
                    "resourceAttributes": {
                        "namespace": namespace,
                        "verb": verb,
                        "group": group,
                        "resource": name,
                        "subresource": sub,
                    },
                }
            }
        )
        return bool(review.status.allowed)

    missing = [need for need in UPLOAD_NEEDS if not can(*need)]
    assert not missing, f"{who} lacks what the upload needs: {missing}"
    other_namespace = "kubeflow"
    leaks = [need for need in UPLOAD_NEEDS if can(need[0], need[1], need[2], other_namespace)]
    assert not leaks, f"{who} may act in namespace {other_namespace}: {leaks}"
    for verb, resource in [
        ("list", "nodes"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("get", "secrets"),
        ("list", "pods"),
        ("create", "pods"),
    ]:
        assert not can(verb, resource), f"{who} may {verb} {resource}"
    assert not can("create", "pipelines.pipelines.kubeflow.org", "", ""), (
        f"{who} may create pipelines cluster-wide"
    )
    rows = cluster.kubectl(
        "auth", "can-i", "--list", "--as", who, "-n", s.namespace
    ).stdout.splitlines()[1:]
    resources = {
        row.split()[0]
        for row in rows
        if row.split() and not row.startswith("[]") and not row.split()[0].startswith("[")
    }
    kfp = {
        r
        for r in resources
        if r.split("/")[0].endswith(("pipelines.kubeflow.org", "kubeflow.org", "argoproj.io"))
    }
    assert resources - kfp <= EVERYONE, f"{who} may also use: {sorted(resources - kfp - EVERYONE)}"
