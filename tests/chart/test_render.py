"""Each ci/ scenario renders, lints and produces exactly the objects it must (narrow assertions)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from chart_helpers import (
    CI_DIR,
    NAMESPACE,
    SCENARIOS,
    find,
    helm_from_env,
    namespace_of,
    one,
    parse_docs,
    pod_specs,
    template_args,
)

from tao_kfp.environment import EnvironmentConfig

FULL = "rel-tao-kfp"


def env_config(docs) -> EnvironmentConfig:
    cm = one(docs, "ConfigMap", f"{FULL}-env") if find(docs, "ConfigMap", f"{FULL}-env") else None
    if cm is None:
        cm = next(d for d in find(docs, "ConfigMap") if d["metadata"]["name"].endswith("-env"))
    return EnvironmentConfig.model_validate(yaml.safe_load(cm["data"]["environment.yaml"]))


def args_of(job: dict, container: str) -> list:
    spec = job["spec"]["template"]["spec"] if job["kind"] == "Job" else job["spec"]
    containers = spec.get("initContainers", []) + spec["containers"]
    return next(c for c in containers if c["name"] == container)["args"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_strict(helm, chart_dir, scenario):
    values = CI_DIR / f"{scenario}.yaml"
    result = helm.run(
        "lint",
        "--strict",
        str(chart_dir),
        "-f",
        str(values),
        "-n",
        namespace_of(values),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm3_and_helm4_render_the_same(renderer, scenario):
    helm3, helm4 = helm_from_env("HELM3"), helm_from_env("HELM4")
    assert renderer.docs(helm3, scenario) == renderer.docs(helm4, scenario)


def test_default_scenario(renderer, helm):
    docs = renderer.docs(helm, "01-default-values")
    pvc = one(docs, "PersistentVolumeClaim", f"{FULL}-workspace")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "storageClassName" not in pvc["spec"], "null storageClass = the cluster default class"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not find(docs, "PersistentVolume")
    assert one(docs, "Secret", f"{FULL}-ngc")["type"] == "Opaque"
    pull = one(docs, "Secret", f"{FULL}-nvcr")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    auth = json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))["auths"]["nvcr.io"]
    assert auth["username"] == "$oauthtoken"
    upload = one(docs, "Job", f"{FULL}-upload")
    assert upload["metadata"]["annotations"]["helm.sh/hook"] == (
        "post-install,post-upgrade,post-rollback"  # rollback moves the recurring run back
    )
    args = args_of(upload, "upload")
    assert args[0] == "upload"
    assert "--host=http://ml-pipeline.kubeflow.svc.cluster.local:8888" in args
    assert "--version-prefix=0.1.0" in args
    assert not [a for a in args if a.startswith(("--token-path", "--namespace", "--run-first"))]
    assert not find(docs, "RoleBinding", f"{FULL}-upload-kfp-edit")
    pod = upload["spec"]["template"]
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert {"name": "HOME", "value": "/home/tao-kfp"} in pod["spec"]["containers"][0]["env"]
    init = one(docs, "Job", f"{FULL}-workspace-init")
    assert args_of(init, "layout")[:2] == ["workspace", "init"]
    # The default route (current TAO, tao.version 6) writes its Hydra specs in step 1: the init
    # Job lays out the workspace only, and no specs ConfigMap is rendered.
    init_pod = init["spec"]["template"]["spec"]
    assert [c["name"] for c in init_pod["containers"]] == ["layout"]
    assert "initContainers" not in init_pod
    assert not find(docs, "ConfigMap", f"{FULL}-specs")
    (package_name,) = one(docs, "ConfigMap", f"{FULL}-pipeline")["data"]
    assert package_name == "tao-classification-pyt.yaml"
    assert "--package=/etc/tao-kfp/pipeline/tao-classification-pyt.yaml" in args
    env = env_config(docs)
    assert env.tao.version == "6"
    assert env.tao.entrypoint == env.tao.deploy_entrypoint == "classification_pyt"
    assert env.images.tao_deploy == "localhost:5000/tao-kfp/tao-deploy-step:0.1.0"
    assert env.workspace.claim_name == f"{FULL}-workspace"
    assert env.secrets.ngc_api_key.name == f"{FULL}-ngc"
    assert env.secrets.image_pull_secrets == [f"{FULL}-nvcr"]
    assert env.gpu.node_selector == {"nvidia.com/gpu.present": "true"}
    assert env.images.tao == "localhost:5000/tao-kfp/tao-step:0.1.0"
    # Tests a (kfp), b (workspace), c (secrets); d (GPU nodes) is off by default.
    tests = {d["metadata"]["name"] for d in find(docs, "Pod")}
    assert tests == {f"{FULL}-test-kfp", f"{FULL}-test-workspace", f"{FULL}-test-secrets"}
    assert not find(docs, "ClusterRole")


def test_environment_config_defaults_match_the_package(renderer, helm):
    """The chart's default install and EnvironmentConfig's defaults describe the same cluster."""
    env = env_config(renderer.docs(helm, "01-default-values"))
    defaults = EnvironmentConfig()
    assert env.gpu == defaults.gpu
    assert env.tao == defaults.tao
    assert env.timeouts == defaults.timeouts
    assert env.images == defaults.images
    assert (env.workspace.run_as_user, env.workspace.run_as_group) == (1000, 1000)


def test_nfs_scenario(renderer, helm):
    docs = renderer.docs(helm, "02-nfs-values")
    pv = one(docs, "PersistentVolume", f"{FULL}-{NAMESPACE}-workspace")
    assert pv["spec"]["nfs"] == {"server": "nfs.example.internal", "path": "/exports/tao"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["mountOptions"] == ["nfsvers=4.2", "hard", "noatime"]
    assert pv["spec"]["claimRef"] == {"namespace": NAMESPACE, "name": f"{FULL}-workspace"}
    pvc = one(docs, "PersistentVolumeClaim", f"{FULL}-workspace")
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == ""
    assert "helm.sh/resource-policy" not in pvc["metadata"].get("annotations", {})
    init = one(docs, "Job", f"{FULL}-workspace-init")
    security = init["spec"]["template"]["spec"]["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (
        2001,
        3001,
        3001,
    )
    assert "--uid=2001" in args_of(init, "layout") and "--gid=3001" in args_of(init, "layout")
    env = env_config(docs)
    assert (env.workspace.run_as_user, env.workspace.run_as_group) == (2001, 3001)
    overrides = yaml.safe_load(one(docs, "ConfigMap", f"{FULL}-specs")["data"]["overrides.yaml"])
    assert overrides == {"train_config.n_epochs": 10, "train_config": {"batch_size_per_gpu": 32}}


def test_existing_claim_scenario(renderer, helm):
    docs = renderer.docs(helm, "03-existing-claim-values")
    assert not find(docs, "PersistentVolumeClaim") and not find(docs, "PersistentVolume")
    assert not find(docs, "Secret"), "existing Secrets are the user's"
    env = env_config(docs)
    assert env.workspace.claim_name == "team-tao-data"
    assert (env.secrets.ngc_api_key.name, env.secrets.ngc_api_key.key) == ("team-ngc", "api-key")
    assert (env.secrets.model_key.name, env.secrets.model_key.key) == ("team-ngc", "model-key")
    assert env.secrets.image_pull_secrets == ["team-nvcr", "registry-mirror"]
    assert env.images.tools == "registry.example.com/ml/tao-kfp-tools:0.1.0-rc1"
    assert env.images.tao.endswith("@sha256:" + "0123456789abcdef" * 4)
    init = one(docs, "Job", f"{FULL}-workspace-init")
    volumes = init["spec"]["template"]["spec"]["volumes"]
    assert {"name": "workspace", "persistentVolumeClaim": {"claimName": "team-tao-data"}} in volumes
    assert init["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry-mirror"}]
    role = one(docs, "Role", f"{FULL}-test-secrets")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["team-ngc", "team-nvcr", "registry-mirror"],
        }
    ]
    assert args_of(one(docs, "Pod", f"{FULL}-test-secrets"), "secrets")[3:] == [
        "--secret=team-ngc:api-key,model-key",
        "--secret=team-nvcr:.dockerconfigjson",
        "--secret=registry-mirror:.dockerconfigjson",
    ]


def test_mig_custom_selector_scenario(renderer, helm):
    docs = renderer.docs(helm, "04-mig-custom-selector-values")
    names = {d["metadata"]["name"] for d in docs}
    assert "vision-tao-upload" in names and not any(n.startswith(FULL) for n in names)
    for doc in docs:
        assert doc["metadata"]["labels"]["team"] == "vision"
        assert doc["metadata"]["annotations"]["owner"] == "vision-team@example.com"
    env = env_config(docs)
    assert (env.gpu.resource, env.gpu.count, env.gpu.shm_size) == (
        "nvidia.com/mig-1g.10gb",
        2,
        "8Gi",
    )
    assert env.gpu.node_selector == {"nvidia.com/mig.config": "all-1g.10gb", "pool": "training"}
    assert [t.key for t in env.gpu.tolerations] == ["dedicated"]
    assert (env.tao.entrypoint, env.tao.version) == ("classification_tf1", "5")
    pvc = one(docs, "PersistentVolumeClaim", "vision-tao-workspace")
    assert pvc["spec"]["storageClassName"] == "fast-rwx"
    for _name, metadata, _spec in pod_specs(docs):
        assert "sidecar.istio.io/inject" not in metadata.get("annotations", {})
    gpu_test = one(docs, "Pod", "vision-tao-test-gpu-nodes")
    assert args_of(gpu_test, "gpu-nodes") == [
        "check",
        "gpu-nodes",
        "--selector=nvidia.com/mig.config=all-1g.10gb",
        "--selector=pool=training",
        "--resource=nvidia.com/mig-1g.10gb",
    ]
    cluster_role = one(docs, "ClusterRole", f"vision-tao-{NAMESPACE}-test-gpu-nodes")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]


def test_multi_user_scenario(renderer, helm):
    docs = renderer.docs(helm, "05-multi-user-values")
    upload = one(docs, "Job", f"{FULL}-upload")
    spec = upload["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    token = next(v for v in spec["volumes"] if v["name"] == "kfp-token")
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert (source["audience"], source["path"]) == ("pipelines.kubeflow.org", "token")
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["kfp-token"] == "/var/run/secrets/kubeflow/pipelines"
    assert mounts["ca-bundle"] == "/etc/tao-kfp/ca"
    args = args_of(upload, "upload")
    for expected in (
        "--namespace=team-vision",
        "--token-path=/var/run/secrets/kubeflow/pipelines/token",
        "--ca-bundle=/etc/tao-kfp/ca/ca.crt",
        "--host=https://ml-pipeline.kubeflow.svc.cluster.local:8888",
        "--pipeline-name=tao-classification",
        "--experiment=tao-nightly",
        "--run-first",
        '--run-params={"dataset_format":"voc","dataset_path":"data/VOCdevkit/VOC2012","epochs":5}',
        "--recurring-cron=0 0 2 * * *",
    ):
        assert expected in args
    assert not any("kubeflow-userid" in json.dumps(doc) for doc in docs)
    binding = one(docs, "RoleBinding", f"{FULL}-upload-kfp-edit")
    assert binding["metadata"]["namespace"] == "team-vision"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kubeflow-pipelines-edit",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{FULL}-upload", "namespace": "team-vision"}
    ]
    verify = one(docs, "Pod", f"{FULL}-test-kfp")
    verify_args = args_of(verify, "kfp")
    assert verify_args[-1] == "--verify-only"
    assert verify_args[:-1] == [a for a in args if a in verify_args]
    assert "--run-first" not in verify_args, "the test must never start a run"
    init_args = args_of(one(docs, "Job", f"{FULL}-workspace-init"), "layout")
    assert (
        "--dataset-url=https://data.example.com/datasets/pascal-voc-classification.tar.gz"
        in init_args
    )
    assert not find(docs, "ClusterRoleBinding")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_chart_pod_meets_pod_security_restricted(renderer, helm, scenario):
    pods = pod_specs(renderer.docs(helm, scenario))
    assert pods
    for name, _metadata, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["restartPolicy"] == "Never", name
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert set(container["resources"]["limits"]) >= {"cpu", "memory"}, name
        token_users = ("-test-secrets", "-test-gpu-nodes")
        assert spec["automountServiceAccountToken"] is name.endswith(token_users), name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_standard_labels_and_namespace(renderer, helm, scenario):
    for doc in renderer.docs(helm, scenario):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "rel"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/name"] == "tao-kfp"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        if doc["kind"] not in ("PersistentVolume", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"], doc["metadata"]["name"]


def test_ngc_key_appears_in_secrets_only(helm, chart_dir):
    """The API key and model key, given as sentinels, appear in Secret objects and nowhere else."""
    from chart_helpers import parse_docs, template_args

    api_key, model_key = "SENTINEL-api-key-5f1c", "SENTINEL-model-key-9a7e"
    sets = {"ngc.apiKey": api_key, "ngc.modelKey": model_key, "tests.gpuNodes.enabled": "true"}
    text = helm.run(
        *template_args(chart_dir, [chart_dir / "ci/05-multi-user-values.yaml"], sets)
    ).stdout
    forms = []
    for secret in (api_key, model_key):
        forms += [secret, base64.b64encode(secret.encode()).decode()]
    secrets_seen = 0
    for doc in parse_docs(text):
        dumped = json.dumps(doc)
        if doc["kind"] == "Secret":
            secrets_seen += any(form in dumped for form in forms)
            continue
        for form in forms:
            assert form not in dumped, (
                f"{doc['kind']}/{doc['metadata']['name']} contains an NGC key"
            )
    assert secrets_seen == 2
    # The pull Secret embeds the key base64'ed inside the base64'ed docker config.
    pull = base64.b64decode(
        next(d for d in parse_docs(text) if d["metadata"]["name"] == f"{FULL}-nvcr")["data"][
            ".dockerconfigjson"
        ]
    ).decode()
    assert api_key in pull and model_key not in pull


@pytest.mark.parametrize(
    "version, package",
    [(None, "tao-classification-pyt.yaml"), ("3", "tao-classification.yaml")],
    ids=["default", "3"],
)
def test_missing_pipeline_file_fails_with_the_fix(helm, tmp_path, version, package):
    from chart_helpers import copy_chart, template_args

    chart = copy_chart(tmp_path / "tao-kfp", skip=[f"files/pipelines/{package}"])
    sets = {"tao.version": version} if version else None
    result = helm.run(
        *template_args(chart, [chart / "ci/01-default-values.yaml"], sets), check=False
    )
    assert result.returncode != 0
    assert f"files/pipelines/{package} is missing from the chart" in result.stderr
    assert "make compile" in result.stderr


def test_notes_show_the_three_commands(helm, chart_dir, tmp_path):
    """NOTES.txt (not rendered by `helm template`) evaluated through a preview template."""
    from chart_helpers import copy_chart, parse_docs, template_args

    chart = copy_chart(tmp_path / "tao-kfp")
    (chart / "NOTES.txt").write_text((chart / "templates/NOTES.txt").read_text())
    (chart / "templates/notes-preview.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-preview\n"
        'data:\n  notes: {{ tpl (.Files.Get "NOTES.txt") . | toJson }}\n'
    )
    docs = parse_docs(helm.run(*template_args(chart, [chart / "ci/01-default-values.yaml"])).stdout)
    notes = next(d for d in docs if d["metadata"]["name"] == "notes-preview")["data"]["notes"]
    assert "kubectl get pvc,configmap,secret -n kubeflow -l app.kubernetes.io/instance=rel" in notes
    assert "KFP runs this pipeline's pods in namespace kubeflow" in notes
    assert 'KFP UI > Pipelines > "rel-tao-kfp" > Create run' in notes
    assert "helm test rel -n kubeflow" in notes


@pytest.mark.parametrize("release", ["1234", "on", "true", "0x1f"])
def test_release_names_yaml_reads_as_numbers_render_as_strings(helm, chart_dir, release):
    """`helm install 1234` or `on`: labels and names stay strings (numeric labels are refused)."""
    from chart_helpers import parse_docs, template_args

    args = template_args(chart_dir, [CI_DIR / "01-default-values.yaml"])
    args[1] = release
    docs = parse_docs(helm.run(*args).stdout)
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == release
        assert all(isinstance(value, str) for value in labels.values()), labels
        assert isinstance(doc["metadata"]["name"], str)


def test_unusual_but_valid_values_render_correctly(helm, chart_dir, tmp_path):
    """A numeric claim name, the largest UID and a 10,000,000 s deadline render, not refused."""
    from chart_helpers import parse_docs, template_args

    values = tmp_path / "unusual.yaml"
    # Numbers in a values file reach the templates as float64 (printed 1e+07 unless converted).
    values.write_text(
        "workspace:\n  mode: existingClaim\n  existingClaim: '1234'\n"
        "  uid: 2147483647\n  gid: 2147483647\n"
        "  init:\n    activeDeadlineSeconds: 10000000\n"
        "timeouts:\n  gpuStepSeconds: 10000000\n"
        "gpu:\n  tolerations:\n    - key: nvidia.com/gpu\n      operator: Exists\n"
        "      effect: NoExecute\n      tolerationSeconds: 10000000\n"
    )
    text = helm.run(*template_args(chart_dir, [CI_DIR / "01-default-values.yaml", values])).stdout
    assert "e+0" not in text
    docs = parse_docs(text)
    init = one(docs, "Job", f"{FULL}-workspace-init")
    assert init["spec"]["activeDeadlineSeconds"] == 10000000
    pod = init["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 2147483647
    claim = next(v for v in pod["volumes"] if v["name"] == "workspace")
    assert claim["persistentVolumeClaim"]["claimName"] == "1234"
    env = env_config(docs)
    assert env.workspace.claim_name == "1234"
    assert env.timeouts.gpu_step_seconds == 10000000
    assert env.gpu.tolerations[0].toleration_seconds == 10000000


def test_prepull_daemonset_runs_where_the_gpu_steps_run(renderer, helm):
    """Scenario 04 enables the pre-pull: same selector and tolerations as the GPU steps."""
    assert not find(renderer.docs(helm, "01-default-values"), "DaemonSet"), "off by default"
    docs = renderer.docs(helm, "04-mig-custom-selector-values")
    env = env_config(docs)
    pod = one(docs, "DaemonSet", "vision-tao-prepull")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == env.gpu.node_selector
    assert pod["tolerations"] == [
        t.model_dump(by_alias=True, exclude_none=True) for t in env.gpu.tolerations
    ]
    # Scenario 04 is on the TAO 5 route: the engine step's deploy image is pulled too.
    assert [c["image"] for c in pod["containers"]] == [env.images.tao, env.images.tao_deploy]
    assert pod["imagePullSecrets"] == [{"name": name} for name in env.secrets.image_pull_secrets]
    for container in pod["containers"]:
        assert container["command"] == ["sleep", "infinity"]
        assert container["resources"]["requests"] == {"cpu": "1m", "memory": "8Mi"}


def test_prepull_skips_the_deploy_image_on_the_tao3_route(helm, chart_dir):
    """The engine step runs in images.taoDeploy only when tao.version is 5 (environment.py)."""
    sets = {"tao.version": "3", "tao.entrypoint": "classification"}
    values = [CI_DIR / "04-mig-custom-selector-values.yaml"]
    docs = parse_docs(helm.run(*template_args(chart_dir, values, sets)).stdout)
    env = env_config(docs)
    pod = one(docs, "DaemonSet", "vision-tao-prepull")["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == [env.images.tao]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_only_the_workspace_outlives_its_use(renderer, helm, scenario):
    """Uninstall deletes the manifest only (helm v3.18.0 pkg/action/uninstall.go:200), not hooks,
    so every hook must delete itself, and only the claim (and NFS
    volume) is kept. Test-only objects are test hooks, so they live only while `helm test` runs."""
    for doc in renderer.docs(helm, scenario):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        annotations = doc["metadata"].get("annotations", {})
        hook = annotations.get("helm.sh/hook")
        if hook:
            policy = set(annotations["helm.sh/hook-delete-policy"].split(","))
            assert {"before-hook-creation", "hook-succeeded", "hook-failed"} <= policy, name
        if annotations.get("helm.sh/resource-policy") == "keep":
            assert doc["kind"] in ("PersistentVolumeClaim", "PersistentVolume"), name
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == "test":
            assert hook == "test", f"{name} is test-only but not a test hook"
        if doc["kind"] in ("Job", "Pod"):
            assert "hook-failed" in annotations["helm.sh/hook-output-log-policy"], name


@pytest.mark.parametrize(
    "host, namespace",
    [
        ("http://ml-pipeline:8888", "any-namespace"),  # a bare service resolves in its own
        ("http://ml-pipeline.kfp:8888", "kfp"),
        ("http://ml-pipeline.kfp.svc.cluster.local:8888", "kfp"),
    ],
)
def test_kfp_namespace_is_read_from_an_in_cluster_host(helm, chart_dir, host, namespace):
    from chart_helpers import template_args

    values = [CI_DIR / "01-default-values.yaml"]
    sets = {"kfp.host": host}
    assert helm.run(*template_args(chart_dir, values, sets, namespace=namespace)).returncode == 0
    refused = helm.run(*template_args(chart_dir, values, sets, namespace="other"), check=False)
    if namespace != "any-namespace":
        assert f"install with -n {namespace}" in refused.stderr


def test_longest_names_stay_within_kubernetes_limits(helm, chart_dir):
    """The longest fullname (48) and release name (53, Helm's limit) keep every Job name, and so
    the job-name label, within 63 (apimachinery util/validation LabelValueMaxLength)."""
    from chart_helpers import parse_docs, template_args

    sets = {
        "fullnameOverride": "f" * 48,
        "tests.gpuNodes.enabled": "true",
        "prepull.enabled": "true",
    }
    for release, extra in (("r" * 53, {}), ("rel", sets)):
        args = template_args(chart_dir, [CI_DIR / "01-default-values.yaml"], extra)
        args[1] = release
        for doc in parse_docs(helm.run(*args).stdout):
            name = doc["metadata"]["name"]
            if doc["kind"] in ("Job", "Pod", "DaemonSet", "PersistentVolumeClaim"):
                assert len(name) <= 63, name
            for value in doc["metadata"]["labels"].values():
                assert len(value) <= 63, value
