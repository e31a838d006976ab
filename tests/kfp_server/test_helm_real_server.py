"""The chart's own hook Jobs against KFP's own server (make e2e-kfp).

`helm install`, `upgrade`, `rollback` and `uninstall` of a ci/ scenario, as the namespace admin
`tenant`, on the control plane the server uses: the upload Job (and the pre-delete Job, the helm
test pods) run in the tools image on node cpu-1 (hack/cluster/node_agent.py, podman, host
network) and talk to the real server; everything is asserted through the server's own API and
the Workflow objects it makes. Standalone pass: ci/01 (in `kubeflow`, where the standalone server
runs pipelines) with a first run and a recurring run every 5 seconds added. Multi-user pass:
ci/05 as its README steps say (a profile owner holding kubeflow-pipelines-edit installs; the
chart binds its ServiceAccount to that role), so the Job's projected token goes through the
server's TokenReview and SubjectAccessReview against KFP's own ClusterRoles.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import requests

from .conftest import REPO, KfpServer, _read_env
from .test_upload_real_server import _assert_still_there, _eventually, _owned_by

sys.path.insert(0, str(REPO / "tests" / "cluster_e2e"))
from cluster_helpers import Cluster  # noqa: E402
from test_lifecycle import LABEL, RELEASE, Scenario  # noqa: E402

DEFAULT = REPO / "ci" / "01-default-values.yaml"
MULTI_USER = REPO / "ci" / "05-multi-user-values.yaml"
RUN_PARAMS = {"dataset_path": "data/e2e", "epochs": 2}
# Standalone: a first run, and a schedule firing every 5 s (KFP's six-field cron) so the old
# schedule has a Workflow when the upgrade moves it.
SCHEDULE = {
    "upload": {
        "experiment": "helm-e2e",
        "runFirst": True,
        "runParams": RUN_PARAMS,
        "recurringCron": "*/5 * * * * *",
    }
}
KFP_AUDIENCE = "pipelines.kubeflow.org"


class Endpoint:
    """The real server as the chart's Jobs reach it: its port on 127.0.0.1 (the agent's pods
    use the host network), plain http."""

    def __init__(self, url: str):
        self.url = url

    def stop(self) -> None:
        pass


class TlsFront(Endpoint):
    """TLS in front of the server's plain HTTP port, for scenario 05's https host and CA bundle
    (kube-root-ca.crt): KFP 2.0.5's API server serves no TLS; in Kubeflow a mesh or gateway
    terminates it. The certificate is the cluster CA's host-service one; bytes pass unchanged."""

    def __init__(self, target_port: int, cert: str, key: str):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        super().__init__(f"https://127.0.0.1:{self.listener.getsockname()[1]}")
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
            upstream = socket.create_connection(self.target)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def stop(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class KfpReader:
    """Reads what the chart's Jobs made, through the server's v2beta1 REST API (multi-user: as
    a profile contributor holding kubeflow-pipelines-view, token checked by the server)."""

    def __init__(self, host: str, namespace: Optional[str] = None, token: Optional[str] = None):
        self.host, self.namespace = host, namespace
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _get(self, path: str, key: str, **params) -> List[dict]:
        answer = requests.get(
            f"{self.host}/apis/v2beta1/{path}",
            params={"page_size": 200, **params},
            headers=self.headers,
            timeout=30,
        )
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
        return answer.json().get(key, [])

    def _scoped(self) -> Dict[str, str]:
        return {"namespace": self.namespace} if self.namespace else {}

    def pipelines(self, name: str) -> List[dict]:
        found = self._get("pipelines", "pipelines", **self._scoped())
        return [p for p in found if p["display_name"].casefold() == name.casefold()]

    def versions(self, pipeline_id: str) -> Dict[str, str]:
        """Version name -> id."""
        found = self._get(f"pipelines/{pipeline_id}/versions", "pipeline_versions")
        return {v["display_name"]: v["pipeline_version_id"] for v in found}

    def experiment(self, name: str) -> dict:
        found = self._get("experiments", "experiments", **self._scoped())
        [experiment] = [e for e in found if e["display_name"] == name]
        return experiment

    def runs(self, experiment_id: str) -> List[dict]:
        return self._get("runs", "runs", experiment_id=experiment_id)

    def recurring_runs(self, experiment_id: str) -> List[dict]:
        # ListRecurringRunsResponse names its list in camel case (recurringRuns = 1) at 2.0.5
        # and 2.17.0 (backend/api/v2beta1/recurring_run.proto).
        return self._get("recurringruns", "recurringRuns", experiment_id=experiment_id)

    def enabled(self, experiment_id: str) -> List[dict]:
        return [r for r in self.recurring_runs(experiment_id) if r.get("status") == "ENABLED"]


def _version_of(run: dict) -> str:
    """The version a run or recurring run runs (pipeline_version_reference, or the deprecated
    pipeline_version_id)."""
    reference = run.get("pipeline_version_reference") or {}
    return reference.get("pipeline_version_id") or run.get("pipeline_version_id", "")


class Release:
    """One scenario installed against the real server, and what its Jobs should have made."""

    def __init__(self, kfp_server: KfpServer, scenario: Scenario, reader: KfpReader):
        self.server, self.s, self.kfp = kfp_server, scenario, reader
        args = self._upload_args()
        self.pipeline = args["--pipeline-name"]
        self.prefix = args["--version-prefix"]
        self.experiment_name = args.get("--experiment")
        self.cron = args.get("--recurring-cron")
        # Pods of earlier releases in a shared namespace (`kubeflow`) are not this release's.
        self.earlier_pods = set(scenario.cluster.pod_logs(scenario.namespace))

    def _upload_args(self) -> Dict[str, str]:
        [job] = [
            d for d in self.s.template()
            if d["kind"] == "Job" and d["metadata"]["name"].endswith("-upload")
        ]  # fmt: skip
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        return dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)

    def versions(self) -> Dict[str, str]:
        [pipeline] = self.kfp.pipelines(self.pipeline)
        return self.kfp.versions(pipeline["pipeline_id"])

    def ours(self) -> List[str]:
        """Our versions (KFP's own first version is named after the pipeline)."""
        return sorted(v for v in self.versions() if v != self.pipeline)

    def experiment_id(self) -> str:
        return self.kfp.experiment(self.experiment_name)["experiment_id"]

    def workflows(self, selector: str = "") -> List[dict]:
        listed = self.s.cluster.kubectl(
            "get", "workflows.argoproj.io", "-n", self.s.namespace, "-l", selector, "-o", "json"
        )
        return json.loads(listed.stdout)["items"]

    def upload_logs(self) -> str:
        logs = self.s.cluster.pod_logs(self.s.namespace)
        return "\n".join(
            log for pod, log in sorted(logs.items())
            if "-upload-" in pod and pod not in self.earlier_pods
        )  # fmt: skip

    def run_of(self, version_id: str) -> dict:
        """The one run of that version (runFirst), with its Workflow."""
        runs = [
            r for r in self.kfp.runs(self.experiment_id())
            if _version_of(r) == version_id and not r.get("recurring_run_id")
        ]  # fmt: skip
        assert len(runs) == 1, f"runs of version {version_id}: {runs}"
        return runs[0]

    def schedule_started(self, recurring: dict) -> List[dict]:
        """Waits for a Workflow the recurring run started; before 2.16 also for its run in the
        API (the persistence agent reports it), which is what the uploader reads before it
        removes a recurring run. Returns the Workflows."""
        rid = recurring["recurring_run_id"]
        started = _eventually(
            "a Workflow started by the recurring run", lambda: _owned_by(self.workflows(), rid)
        )
        if self.server.release < (2, 16, 0):
            _eventually(
                "the recurring run's run in the API",
                lambda: [
                    run for run in self.kfp.runs(self.experiment_id())
                    if run.get("recurring_run_id") == rid
                ],
            )  # fmt: skip
        return started

    def still_there(self, workflows: List[dict]) -> None:
        _assert_still_there(workflows, self.workflows, " when it moved")

    def one_enabled_schedule_on(self, version_id: str) -> dict:
        enabled = self.kfp.enabled(self.experiment_id())
        assert [_version_of(r) for r in enabled] == [version_id], (
            f"enabled recurring runs {enabled}, expected one on version {version_id}"
        )
        assert enabled[0]["trigger"]["cron_schedule"]["cron"] == self.cron
        return enabled[0]


def _cluster(kfp_server: KfpServer) -> Cluster:
    return Cluster(_read_env(Path(kfp_server.env["CLUSTER_ENV"])))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def standalone(kfp_server, tmp_path):
    cluster = _cluster(kfp_server)
    scenario = Scenario(
        cluster, DEFAULT, tmp_path, kfp=Endpoint(kfp_server.host), kfp_roles=False,
        reuse_namespace=True, extra_values=SCHEDULE,
    )  # fmt: skip
    yield Release(kfp_server, scenario, KfpReader(kfp_server.host))
    scenario.close()
    scenario.helm("uninstall", RELEASE, "--wait", "--timeout", "2m", check=False)
    cluster.kubectl("delete", "pvc", "-n", scenario.namespace, "-l", LABEL, check=False)


@pytest.mark.kfp_server
def test_helm_lifecycle_against_the_real_server(kfp_server, standalone):
    r, s = standalone, standalone.s
    assert s.namespace == "kubeflow", "standalone KFP runs pipelines in its own namespace"
    s.prepare()
    name_rule = re.compile(rf"{re.escape(r.prefix)}-[0-9a-f]{{10}}")

    # install: one pipeline, KFP's own first version and ours; the first run's Workflow exists
    s.install()
    assert len(r.kfp.pipelines(r.pipeline)) == 1
    [v1] = r.ours()
    assert name_rule.fullmatch(v1), v1
    assert sorted(r.versions()) == sorted([r.pipeline, v1])
    v1_id = r.versions()[v1]
    logs = r.upload_logs()
    tag = kfp_server.env["KFP_TAG_NAME"]
    assert f"KFP API at {kfp_server.host} answered (version: {tag}" in logs, logs
    first = r.run_of(v1_id)
    assert first["runtime_config"]["parameters"] == RUN_PARAMS
    _eventually(
        "the first run's Workflow", lambda: r.workflows(f"pipeline/runid={first['run_id']}")
    )
    old = r.one_enabled_schedule_on(v1_id)

    # helm test: the KFP test pod finds this release's version on the server
    s.helm("test", RELEASE, "--timeout", "5m")

    started = r.schedule_started(old)

    # an unchanged upgrade uploads nothing, starts no run, keeps the schedule
    runs_before = len(r.kfp.runs(r.experiment_id()))
    s.install("upgrade")
    assert r.ours() == [v1]
    assert "unchanged" in r.upload_logs()
    assert r.one_enabled_schedule_on(v1_id)["recurring_run_id"] == old["recurring_run_id"]
    unchanged_runs = [
        run for run in r.kfp.runs(r.experiment_id()) if not run.get("recurring_run_id")
    ]
    assert len(unchanged_runs) == 1, f"an unchanged upgrade started a run ({runs_before} before)"

    # an upgrade with a changed value: one new version by the name rule, its first run, and the
    # schedule moved to it; the Workflow the old schedule started is still there
    s.install("upgrade", "--set", "gpu.count=2")
    [v2] = [v for v in r.ours() if v != v1]
    assert name_rule.fullmatch(v2), v2
    assert sorted(r.versions()) == sorted([r.pipeline, v1, v2])
    v2_id = r.versions()[v2]
    second = r.run_of(v2_id)
    _eventually(
        "the second run's Workflow", lambda: r.workflows(f"pipeline/runid={second['run_id']}")
    )
    moved = r.one_enabled_schedule_on(v2_id)
    r.still_there(started)
    # Before 2.16 a recurring run whose runs the API does not list yet is deleted only after a
    # grace (60 s, docs/schedule-lifecycle.md): the rollback below moves one that has a run.
    r.schedule_started(moved)

    # rollback: the post-rollback Job finds the older version (uploads nothing) and moves the
    # schedule back to it
    s.helm("rollback", RELEASE, "1", "--wait", "--timeout", "5m")
    assert sorted(r.versions()) == sorted([r.pipeline, v1, v2])
    r.schedule_started(r.one_enabled_schedule_on(v1_id))  # the reinstall below moves it

    # uninstall: the pre-delete Job disables the schedule
    s.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    assert r.kfp.enabled(r.experiment_id()) == [], "uninstall left the schedule enabled"

    # reinstall with the opt-out: the schedule is back on v1, and uninstall leaves it enabled
    s.install("install", "--set", "upload.disableRecurringRunOnUninstall=false")
    kept = r.one_enabled_schedule_on(v1_id)
    assert r.ours() == sorted([v1, v2]), "a reinstall of an uploaded version uploaded again"
    s.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    assert r.one_enabled_schedule_on(v1_id)["recurring_run_id"] == kept["recurring_run_id"]
    s.no_pod_refused()


# The other standalone scenarios differ in storage, Secrets, labels and the TAO route (04: TAO 5,
# MIG GPUs), so in the package each uploads: each install's upload Job must get its version in.
OTHER_SCENARIOS = [
    path for path in sorted((REPO / "ci").glob("*-values.yaml"))
    if path not in (DEFAULT, MULTI_USER)
]  # fmt: skip


@pytest.fixture(params=OTHER_SCENARIOS, ids=lambda path: path.stem)
def other(kfp_server, tmp_path, request):
    cluster = _cluster(kfp_server)
    # A pipeline of its own per scenario (01 and 02 would otherwise share the release's name).
    scenario = Scenario(
        cluster, request.param, tmp_path, kfp=Endpoint(kfp_server.host), kfp_roles=False,
        reuse_namespace=True,
        extra_values={"upload": {"pipelineName": f"e2e-{request.param.stem}"}},
    )  # fmt: skip
    yield Release(kfp_server, scenario, KfpReader(kfp_server.host))
    scenario.close()
    scenario.helm("uninstall", RELEASE, "--wait", "--timeout", "2m", check=False)
    cluster.kubectl("delete", "pvc", "-n", scenario.namespace, "--all", check=False)
    cluster.kubectl("delete", "pv", "-l", LABEL, "--ignore-not-found", check=False)
    cluster.kubectl(
        "delete", "pv", f"{scenario.namespace}-team-tao-data", "--ignore-not-found", check=False
    )
    grant = f"tenant-{scenario.name}"
    cluster.kubectl(
        "delete", "clusterrolebinding,clusterrole", grant, "--ignore-not-found", check=False
    )


@pytest.mark.kfp_server
def test_each_other_scenario_uploads_its_version(kfp_server, other):
    r, s = other, other.s
    s.prepare()
    s.install()
    [version] = r.ours()
    assert re.fullmatch(rf"{re.escape(r.prefix)}-[0-9a-f]{{10}}", version), version
    assert sorted(r.versions()) == sorted([r.pipeline, version])
    assert f"Adapting for KFP {kfp_server.env['KFP_TAG']}" in r.upload_logs()
    s.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    s.no_pod_refused()


@pytest.fixture
def multi_user(kfp_server, tmp_path):
    cluster = _cluster(kfp_server)
    front = TlsFront(
        _port(kfp_server.host),
        cluster.env["CLUSTER_HOST_SERVICE_CERT"],
        cluster.env["CLUSTER_HOST_SERVICE_KEY"],
    )
    # The scenario's daily schedule, every 5 s instead: its Workflows start in the profile
    # namespace, and a move keeps the old one (as in the standalone test).
    scenario = Scenario(
        cluster, MULTI_USER, tmp_path, kfp=front, kfp_roles=False,
        extra_values={"upload": {"recurringCron": "*/5 * * * * *"}},
    )  # fmt: skip
    yield scenario
    scenario.close()
    cluster.delete_namespace(scenario.namespace)


def _viewer_token(cluster: Cluster, namespace: str) -> str:
    """A profile contributor with KFP's kubeflow-pipelines-view role: reads for the suite."""
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "e2e-viewer"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "e2e-viewer"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "kubeflow-pipelines-view",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "e2e-viewer", "namespace": namespace}
                ],
            },
        ],
        namespace=namespace,
    )
    request = {"spec": {"audiences": [KFP_AUDIENCE], "expirationSeconds": 3600}}
    return cluster.core.create_namespaced_service_account_token(
        "e2e-viewer", namespace, request
    ).status.token


@pytest.mark.kfp_server_multi_user
def test_multi_user_helm_lifecycle_against_the_real_server(kfp_server, multi_user):
    s = multi_user
    s.prepare()  # the profile owner `tenant` holds kubeflow-pipelines-edit there (README)
    reader = KfpReader(kfp_server.host, s.namespace, _viewer_token(s.cluster, s.namespace))
    r = Release(kfp_server, s, reader)
    name_rule = re.compile(rf"{re.escape(r.prefix)}-[0-9a-f]{{10}}")

    # install: the Job's projected token passes the server's TokenReview and its
    # SubjectAccessReviews (the chart's RoleBinding to kubeflow-pipelines-edit)
    s.install()
    logs = r.upload_logs()
    assert f"multi-user: yes, namespace: {s.namespace}, token: yes" in logs, logs
    [pipeline] = reader.pipelines(r.pipeline)
    [v1] = r.ours()
    assert name_rule.fullmatch(v1), v1
    v1_id = r.versions()[v1]
    first = r.run_of(v1_id)
    assert first["runtime_config"]["parameters"] == s.values["upload"]["runParams"]
    # The run's Workflow is created in the profile namespace.
    _eventually(
        "the first run's Workflow", lambda: r.workflows(f"pipeline/runid={first['run_id']}")
    )
    old = r.one_enabled_schedule_on(v1_id)

    # helm test: the KFP test pod's token is authorized too
    s.helm("test", RELEASE, "--timeout", "5m")

    # The schedule's Workflows start in the profile namespace; a move keeps them.
    started = r.schedule_started(old)
    s.install("upgrade", "--set", "gpu.count=2")
    [v2] = [v for v in r.ours() if v != v1]
    assert name_rule.fullmatch(v2), v2
    moved = r.one_enabled_schedule_on(r.versions()[v2])
    r.still_there(started)
    r.schedule_started(moved)

    s.helm("rollback", RELEASE, "1", "--wait", "--timeout", "5m")
    assert r.ours() == sorted([v1, v2])
    r.one_enabled_schedule_on(v1_id)

    # uninstall: the pre-delete Job's disable call is authorized by the same role
    s.helm("uninstall", RELEASE, "--wait", "--timeout", "5m")
    assert reader.enabled(r.experiment_id()) == [], "uninstall left the schedule enabled"
    assert pipeline["pipeline_id"] == reader.pipelines(r.pipeline)[0]["pipeline_id"]
    s.no_pod_refused()
