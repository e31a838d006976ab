"""Every chart pod of every `ci/` scenario, run in podman as the kubelet would (`make e2e`).

The rendered manifest is the input: hack/podrun.py turns each Job's and helm-test Pod's spec
into `podman run` (command and args, env and env from Secrets, ConfigMap/Secret/token files,
the claim as a host folder, user and groups, read-only root, dropped capabilities, no
privilege escalation) and refuses any field it does not understand. The KFP API is the double
in tests/doubles/kfp_api.py on the host network; the Kubernetes API reads of the helm tests are
answered by e2e_helpers.KubeApiDouble. What runs in the containers is the real tools image.
"""

from __future__ import annotations

import copy
import hashlib
import io
import subprocess
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from e2e_helpers import (
    ROOT,
    KubeApiDouble,
    image,
    podrun,
    render,
    scenario_namespace,
    self_signed_cert,
)

from doubles.kfp_api import FakeKfpApi
from tao_kfp import routes
from tao_kfp.environment import EnvironmentConfig

pytestmark = pytest.mark.e2e

SCENARIOS = sorted((ROOT / "ci").glob("*-values.yaml"))
KFP_TOKEN = "e2e-projected-kfp-token"
SA_TOKEN = "e2e-serviceaccount-token"
SPEC_FILE = "classification_spec.cfg"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def dataset_server(folder: Path):
    """An http server with a tiny class-folder dataset archive (for workspace.init.datasetUrl)."""
    archive = folder / "dataset.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for label in ("cat", "dog"):
            data = f"not really a {label} image".encode()
            info = tarfile.TarInfo(f"pets/{label}/1.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder))
    )
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dataset.tar.gz"
    return server, url, hashlib.sha256(archive.read_bytes()).hexdigest()


class Install:
    """One scenario rendered and set up: the KFP double, the cluster's objects, the workspace."""

    def __init__(self, scenario: Path, tmp: Path, tls, extra_values=None):
        self.scenario = scenario
        self.namespace = scenario_namespace(scenario)
        values = __import__("yaml").safe_load(scenario.read_text()) or {}
        kfp_values = values.get("kfp", {})
        multi_user = kfp_values.get("mode") == "multiUser"
        https = str(kfp_values.get("host", "")).startswith("https://")
        self.kfp = FakeKfpApi(
            multi_user=multi_user,
            token=KFP_TOKEN if multi_user else None,
            tls=tls if https else None,
        ).start()
        overrides = {
            "images": {
                "tools": {
                    "repository": image("tools").rsplit(":", 1)[0],
                    "tag": image("tools").rsplit(":", 1)[1],
                    "digest": "",
                }
            },
            # The double's host names no namespace: say where KFP runs the pipeline's pods.
            "kfp": {"host": self.kfp.url, "pipelineNamespace": self.namespace},
            **(extra_values or {}),
        }
        self.servers = []
        if values.get("workspace", {}).get("init", {}).get("datasetUrl"):
            server, url, digest = dataset_server(tmp)
            self.servers.append(server)
            overrides["workspace"] = {"init": {"datasetUrl": url, "datasetSha256": digest}}
        self.docs = render(scenario, overrides, self.namespace)
        self.workspace = tmp / "workspace"
        self.workspace.mkdir()
        # A fresh RWX volume from a provisioner such as nfs-subdir-external-provisioner: 0777.
        self.workspace.chmod(0o777)
        sa_dir = tmp / "serviceaccount"
        sa_dir.mkdir()
        (sa_dir / "token").write_text(SA_TOKEN)
        (sa_dir / "ca.crt").write_text(Path(tls[0]).read_text())
        (sa_dir / "namespace").write_text(self.namespace)
        for path in sa_dir.iterdir():
            path.chmod(0o644)
        self.cluster = podrun.Cluster(
            namespace=self.namespace,
            service_account_dir=sa_dir,
            tokens={"pipelines.kubeflow.org": KFP_TOKEN},
        )
        self.cluster.add_manifest_objects(self.docs)
        # What the user creates before installing (scenario 03) and what the cluster has.
        self.cluster.secrets.setdefault("team-ngc", {"api-key": "k", "model-key": "m"})
        for name in ("team-nvcr", "registry-mirror"):
            self.cluster.secrets.setdefault(name, {".dockerconfigjson": '{"auths": {}}'})
        self.cluster.config_maps["kube-root-ca.crt"] = {"ca.crt": Path(tls[0]).read_text()}
        claims = [d["metadata"]["name"] for d in self.docs if d["kind"] == "PersistentVolumeClaim"]
        claim = claims[0] if claims else values["workspace"]["existingClaim"]
        self.cluster.claims[claim] = podrun.Claim(self.workspace)
        nodes = [
            {
                "metadata": {
                    "name": "gpu-1",
                    "labels": {
                        "nvidia.com/gpu.present": "true",
                        "nvidia.com/mig.config": "all-1g.10gb",
                        "pool": "training",
                    },
                },
                "status": {"allocatable": {"nvidia.com/gpu": "1", "nvidia.com/mig-1g.10gb": "7"}},
            }
        ]
        self.kube = KubeApiDouble(self.cluster, SA_TOKEN, tls, nodes)
        self.cluster.api_port = self.kube.port

    def pod(self, suffix: str) -> dict:
        found = [
            d
            for d in self.docs
            if d["kind"] in ("Job", "Pod") and d["metadata"]["name"].endswith(suffix)
        ]
        assert len(found) == 1, f"{self.scenario.name}: pods ending in {suffix}: {len(found)}"
        return found[0]

    def helm_test_pods(self) -> list:
        return [
            d
            for d in self.docs
            if d["kind"] == "Pod"
            and d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
        ]

    def run(self, doc: dict) -> podrun.PodResult:
        result = podrun.run_pod(doc, self.cluster)
        assert_runs_its_own_command(result)
        return result

    def close(self):
        self.kfp.stop()
        self.kube.stop()
        for server in self.servers:
            server.shutdown()


def assert_runs_its_own_command(result) -> None:
    """The chart pins each container's command: it must not depend on the image's ENTRYPOINT
    (KFP and users may point images.tools at an image without one, and a Pod with only `args`
    would run `upload` as a program there), and it must be the tao-kfp CLI."""
    for run in result.runs:
        assert not run.command_from_image, (
            f"{run.pod}/{run.container} sets no `command`: the runtime would execute the image's"
            f" ENTRYPOINT + args = {run.executed}"
        )
        assert run.executed[0] == "tao-kfp", f"{run.pod}/{run.container} runs {run.executed}"


@pytest.fixture(params=SCENARIOS, ids=lambda p: p.stem)
def install(request, tmp_path, tls):
    setup = Install(request.param, tmp_path, tls)
    yield setup
    setup.close()


def reads_workspace_spec(install) -> bool:
    """Whether the scenario's route reads a spec from the workspace (the init Job writes it)."""
    values = yaml.safe_load(install.scenario.read_text()) or {}
    version = str((values.get("tao") or {}).get("version") or EnvironmentConfig().tao.version)
    return bool(routes.route_for(version).workspace_spec)


def versions(kfp) -> list:
    return [
        v["pipeline_version_id"]
        for p in list(kfp.state.pipelines.values())
        for v in kfp.versions_of(p["pipeline_id"])
    ]


def test_install_and_helm_test(install):
    init = install.run(install.pod("-workspace-init"))
    assert init.succeeded, init.log
    for name in ("models", "specs", "data", "experiments"):
        assert (install.workspace / name).is_dir(), init.log
    # The TF1 routes read the spec the init Job writes; the default route (6) reads none.
    assert (install.workspace / "specs" / SPEC_FILE).is_file() == reads_workspace_spec(install)

    upload = install.run(install.pod("-upload"))
    assert upload.succeeded, upload.log
    first = versions(install.kfp)
    assert first, f"the upload Job uploaded nothing:\n{upload.log}"
    posts = len(install.kfp.requests_to("POST", "/apis/v2beta1/pipelines/upload"))
    again = install.run(install.pod("-upload"))
    assert again.succeeded, again.log
    assert versions(install.kfp) == first, f"the second upload created a version:\n{again.log}"
    assert len(install.kfp.requests_to("POST", "/apis/v2beta1/pipelines/upload")) == posts

    for pod in install.helm_test_pods():
        result = install.run(pod)
        assert result.succeeded, f"{pod['metadata']['name']}:\n{result.log}"


@pytest.fixture
def default_install(tmp_path, tls):
    # A short KFP deadline, so the "KFP unreachable" case gives up in seconds, not 5 minutes.
    setup = Install(
        ROOT / "ci" / "01-default-values.yaml", tmp_path, tls, {"upload": {"deadlineSeconds": 10}}
    )
    assert setup.run(setup.pod("-workspace-init")).succeeded
    assert setup.run(setup.pod("-upload")).succeeded
    yield setup
    setup.close()


def test_kfp_test_fails_when_kfp_is_unreachable(default_install):
    default_install.kfp.stop()
    result = default_install.run(default_install.pod("-test-kfp"))
    assert not result.succeeded
    assert default_install.kfp.url in result.log and "unreachable" in result.log.lower(), result.log


def test_secrets_test_fails_when_a_key_is_missing(default_install):
    secret = next(
        d["metadata"]["name"]
        for d in default_install.docs
        if d["kind"] == "Secret" and "NGC_API_KEY" in (d.get("data") or {})
    )
    del default_install.cluster.secrets[secret]["NGC_API_KEY"]
    result = default_install.run(default_install.pod("-test-secrets"))
    assert not result.succeeded
    expected = f"Secret {default_install.namespace}/{secret} lacks key(s) NGC_API_KEY"
    assert expected in result.log, result.log


def test_workspace_test_fails_when_the_workspace_is_read_only(default_install):
    for claim in default_install.cluster.claims.values():
        claim.read_only = True
    result = default_install.run(default_install.pod("-test-workspace"))
    assert not result.succeeded
    assert "is not writable" in result.log and "read-only claim" in result.log, result.log


# ---- the e2e catches what it is here to catch ----


def test_a_pod_without_command_is_caught(default_install):
    doc = copy.deepcopy(default_install.pod("-upload"))
    del doc["spec"]["template"]["spec"]["containers"][0]["command"]
    with pytest.raises(AssertionError, match="sets no `command`"):
        default_install.run(doc)


def test_a_pod_writing_outside_its_writable_mounts_fails(tmp_path, tls):
    # The spec step of a TF1 install (tao.version 3): the default route's init Job writes no spec.
    install = Install(
        ROOT / "ci" / "01-default-values.yaml", tmp_path, tls, {"tao": {"version": "3"}}
    )
    try:
        doc = copy.deepcopy(install.pod("-workspace-init"))
        spec_step = doc["spec"]["template"]["spec"]["containers"][0]
        assert spec_step["name"] == "spec"
        # Same pod, but the spec is written next to the package instead of into the workspace.
        spec_step["args"] = [
            a if not a.startswith("--out=") else "--out=/opt/tao-kfp/spec.cfg"
            for a in spec_step["args"]
        ]
        result = podrun.run_pod(doc, install.cluster)
    finally:
        install.close()
    assert not result.succeeded
    assert "Read-only file system" in result.log, result.log


def test_a_tools_image_with_a_broken_path_fails(default_install, tmp_path):
    broken = image("tools").rsplit(":", 1)[0] + "-broken-path:e2e"
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM {image('tools')}\nENV PATH=/usr/bin:/bin\n")
    subprocess.run(
        [
            default_install.cluster.engine,
            "build",
            "-q",
            "-t",
            broken,
            "-f",
            str(containerfile),
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    doc = copy.deepcopy(default_install.pod("-upload"))
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = broken
    result = podrun.run_pod(doc, default_install.cluster)
    assert not result.succeeded
    assert "tao-kfp" in result.log and "not found" in result.log, result.log
