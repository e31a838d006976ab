"""One rule set: the chart refuses exactly what the code reading the same value refuses.

Every rule that exists both in the chart (values.schema.json, templates/_validate.tpl) and in
tao-kfp (tao_kfp.value_rules, the environment config, the upload's input checks, the spec
overrides, the KFP backend floor) has ONE case list here, and each case goes through both: the
chart under Helm 4 (`helm template` on top of ci/01-default-values.yaml; test_bad_values runs
both Helms) and the Python rule. Mount paths are the chart's alone: local runs mount host paths.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from chart_helpers import CI_DIR, REPO, resolved_schema, template_args
from pydantic import ValidationError

from tao_kfp import environment as env
from tao_kfp import value_rules as rules
from tao_kfp.upload import UploadError, check_run_params
from tao_kfp.upload.inputs import check_host, normalise_cron

SCHEMA = resolved_schema()["properties"]
RAW_SCHEMA = json.loads((REPO / "values.schema.json").read_text())
VALIDATE_TPL = (REPO / "templates/_validate.tpl").read_text()
PACKAGE = next(yaml.safe_load_all((REPO / "files/pipelines/tao-classification.yaml").read_text()))


def chart_accepts(helm, chart_dir, tmp_path, values: dict) -> bool:
    override = tmp_path / "case.yaml"
    override.write_text(yaml.safe_dump(values))
    result = helm.run(
        *template_args(chart_dir, [CI_DIR / "01-default-values.yaml", override]), check=False
    )
    return result.returncode == 0


def case_ids(cases):
    return [json.dumps(case[:-1], sort_keys=True) for case in cases]


# ---------------------------------------------------------------------------------------------
# The same patterns, verbatim
# ---------------------------------------------------------------------------------------------


def test_schema_uses_the_shared_patterns():
    definitions = RAW_SCHEMA["definitions"]
    assert definitions["size"]["pattern"] == env.QUANTITY_PATTERN
    assert definitions["dnsLabelOrEmpty"]["pattern"] == "^$|" + env.DNS_LABEL_PATTERN
    assert definitions["labelKey"]["pattern"] == env.LABEL_KEY_PATTERN
    assert definitions["labelValue"]["pattern"] == env.LABEL_VALUE_PATTERN
    assert definitions["configMapKey"]["pattern"] == rules.SECRET_KEY_PATTERN
    assert definitions["imageRepository"]["pattern"] == rules.IMAGE_REPOSITORY_PATTERN
    image = definitions["image"]["properties"]
    assert image["tag"]["pattern"] == "^$|" + rules.IMAGE_TAG_PATTERN
    assert image["digest"]["pattern"] == "^$|" + rules.IMAGE_DIGEST_PATTERN
    assert SCHEMA["upload"]["properties"]["recurringCron"]["pattern"] == rules.CRON_PATTERN
    gpu, workspace = SCHEMA["gpu"]["properties"], SCHEMA["workspace"]["properties"]
    assert gpu["resource"]["pattern"] == env.GPU_RESOURCE_PATTERN
    assert workspace["existingClaim"]["maxLength"] == 63


def test_every_image_uses_one_definition():
    """One rule for every image: images.taoDeploy had drifted to a looser pattern."""
    images = RAW_SCHEMA["properties"]["images"]["properties"]
    for name in ("tools", "tao", "taoDeploy"):
        assert images[name] == {"$ref": "#/definitions/image"}, name


def test_template_uses_the_shared_rules():
    # A Go template string literal doubles each backslash.
    for pattern in (
        env.NVIDIA_RESOURCE_PATTERN,
        rules.NFS_SERVER_WITH_PORT_PATTERN,
        rules.URL_USERINFO_PATTERN,
        rules.URL_CREDENTIAL_QUERY_PATTERN,
        rules.LAUNCHER_SAFE_PATTERN,
    ):
        assert json.dumps(pattern) in VALIDATE_TPL, pattern


# ---------------------------------------------------------------------------------------------
# GPU scheduling: chart vs EnvironmentConfig
# ---------------------------------------------------------------------------------------------


def environment_accepts(section: str, values: dict) -> bool:
    try:
        env.EnvironmentConfig.model_validate({section: values})
    except ValidationError:
        return False
    return True


TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_CASES = [
    ({"resource": "nvidia.com/gpu"}, True),
    ({"resource": "nvidia.com/mig-1g.10gb"}, True),
    ({"resource": "nvidia.com/mig-3g.40gb"}, True),
    ({"resource": "amd.com/gpu"}, True),
    ({"resource": "nvidia.com/mig-1c.3g.20gb"}, True),
    ({"resource": "nvidia.com/gpu.shared"}, True),
    ({"resource": "example.kubernetes.io/gpu"}, False),
    ({"resource": "nvidia.com/gpus"}, False),
    ({"resource": "nvidia.com/mig-1g"}, False),
    ({"resource": "gpu"}, False),
    ({"shmSize": "16Gi"}, True),
    ({"shmSize": "512m"}, False),
    ({"shmSize": "0"}, False),
    ({"nodeSelector": {"pool": "gpu pool"}}, False),
    ({"nodeSelector": {"-bad": "x"}}, False),
    ({"nodeSelector": {"example.com/pool": "a100"}}, True),
    ({"tolerations": [TOLERATION]}, True),
    ({"tolerations": [{}]}, False),
    ({"tolerations": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}, True),
    ({"tolerations": [{"key": "dedicated", "operator": "Exists", "value": "gpu"}]}, False),
    ({"tolerations": [dict(TOLERATION, value="x")]}, False),
    ({"tolerations": [dict(TOLERATION, tolerationSeconds=30)]}, False),
    ({"tolerations": [dict(TOLERATION, effect="NoExecute", tolerationSeconds=30)]}, True),
]


@pytest.mark.parametrize("values, accepted", GPU_CASES, ids=case_ids(GPU_CASES))
def test_gpu_rules_agree(helm4, chart_dir, tmp_path, values, accepted):
    assert chart_accepts(helm4, chart_dir, tmp_path, {"gpu": values}) is accepted
    assert environment_accepts("gpu", values) is accepted


# Other values that reach the environment config: (chart values, the config the chart renders
# from them, accepted).
ENVIRONMENT_CASES = [
    (
        {"ngc": {"secretKeys": {"apiKey": "a..b"}}},
        {"secrets": {"ngcApiKey": {"name": "s", "key": "a..b"}}},
        False,
    ),
    (
        {"ngc": {"secretKeys": {"apiKey": ".key_1"}}},
        {"secrets": {"ngcApiKey": {"name": "s", "key": ".key_1"}}},
        True,
    ),
    ({"gpu": {"count": 16}}, {"gpu": {"count": 16}}, True),
    ({"gpu": {"count": 0}}, {"gpu": {"count": 0}}, False),
    ({"gpu": {"count": 17}}, {"gpu": {"count": 17}}, False),
    ({"timeouts": {"gpuStepSeconds": 59}}, {"timeouts": {"gpuStepSeconds": 59}}, False),
    ({"timeouts": {"cpuStepSeconds": 60}}, {"timeouts": {"cpuStepSeconds": 60}}, True),
    ({"workspace": {"uid": 0}}, {"workspace": {"runAsUser": 0}}, False),
    ({"workspace": {"gid": 0}}, {"workspace": {"runAsGroup": 0}}, False),
    ({"tao": {"version": "4"}}, {"tao": {"version": "4"}}, False),
    (
        {"workspace": {"mode": "existingClaim", "existingClaim": "team.data"}},
        {"workspace": {"claimName": "team.data"}},
        False,
    ),
    (
        {"workspace": {"mode": "existingClaim", "existingClaim": "1234"}},
        {"workspace": {"claimName": "1234"}},
        True,
    ),
]


@pytest.mark.parametrize(
    "values, config, accepted", ENVIRONMENT_CASES, ids=case_ids(ENVIRONMENT_CASES)
)
def test_environment_rules_agree(helm4, chart_dir, tmp_path, values, config, accepted):
    assert chart_accepts(helm4, chart_dir, tmp_path, values) is accepted
    try:
        env.EnvironmentConfig.model_validate(config)
    except ValidationError:
        assert not accepted
    else:
        assert accepted


def test_environment_refuses_a_claim_name_kfp_cannot_use_as_volume_name():
    for name in ("team.data", "x" * 64):
        with pytest.raises(ValidationError):
            env.Workspace(claim_name=name)
    assert env.Workspace(claim_name="1234").claim_name == "1234"


# ---------------------------------------------------------------------------------------------
# TAO version and command (issue 19 section 6: two disagreements on the TAO 5 route)
# ---------------------------------------------------------------------------------------------

TAO_CASES = [
    ("3", "classification", True),
    ("5", "classification_tf1", True),
    ("3", "classification_tf1", False),
    ("5", "classification", False),
    # An absolute path: the command is its last segment, whatever the folders are called.
    ("5", "/opt/classification/bin/classification_tf1", True),
    ("3", "/usr/local/bin/classification", True),
    ("5", "/usr/local/bin/classification", False),
    ("3", "/opt/tao5/bin/classification_tf1", False),
    ("3", "python -m tao_kfp.cpu_backend", True),
    ("5", "python -m tao_kfp.cpu_backend --tao-version 5", True),
    ("5", "python -m tao_kfp.cpu_backend --tao-version 3", False),
    ("5", "python -m tao_kfp.cpu_backend", False),
    ("3", "python -m tao_kfp.cpu_backend --tao-version 5", False),
    ("3", "my-site-wrapper --gpus-from-env", True),
    ("6", "classification_pyt", True),
    ("6", "/usr/local/bin/classification_pyt", True),
    ("6", "classification", False),
    ("5", "classification_pyt", False),
    # The CPU backend plays only the TF1 routes, with or without --tao-version 6.
    ("6", "python -m tao_kfp.cpu_backend", False),
    ("6", "python -m tao_kfp.cpu_backend --tao-version 6", False),
]


def tao_accepts(version: str, entrypoint: str) -> bool:
    try:
        env.Tao(version=version, entrypoint=entrypoint)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("version, entrypoint, accepted", TAO_CASES, ids=case_ids(TAO_CASES))
def test_tao_command_rules_agree(helm4, chart_dir, tmp_path, version, entrypoint, accepted):
    tao = {"version": version, "entrypoint": entrypoint}
    assert chart_accepts(helm4, chart_dir, tmp_path, {"tao": tao}) is accepted
    assert tao_accepts(version, entrypoint) is accepted


# ---------------------------------------------------------------------------------------------
# Image references: one rule for every image (issue 19 section 4)
# ---------------------------------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64
IMAGE_CASES = [
    ({"repository": "nvcr.io/nvidia/tao/tao-toolkit", "tag": "5.0.0-deploy"}, True),
    ({"repository": "localhost:5000/tao-kfp/tools", "tag": ""}, True),
    ({"repository": "registry.example.com/team/tao", "digest": DIGEST}, True),
    ({"repository": "tao-step", "tag": "v1_2.3"}, True),
    ({"repository": "nvcr.io/nvidia/TAO/tao-toolkit", "tag": "5.0"}, False),
    ({"repository": "nvcr.io/nvidia/tao/tao-toolkit:5.0.0", "tag": ""}, False),
    ({"repository": "nvcr.io/nvidia/tao/tao-toolkit", "tag": "-bad"}, False),
    ({"repository": "nvcr.io/nvidia/tao/tao-toolkit", "tag": "5.0 deploy"}, False),
    ({"repository": "nvcr.io/nvidia/tao/tao-toolkit", "digest": "sha256:abc"}, False),
    ({"repository": "/leading/slash", "tag": "1"}, False),
    ({"repository": "trailing/slash/", "tag": "1"}, False),
]


def reference(image: dict) -> str:
    """The reference the chart renders (tao-kfp.image); an empty tag is the appVersion."""
    if image.get("digest"):
        return f"{image['repository']}@{image['digest']}"
    return f"{image['repository']}:{image.get('tag') or '0.1.0'}"


@pytest.mark.parametrize("name", ["tools", "tao", "taoDeploy"])
@pytest.mark.parametrize("image, accepted", IMAGE_CASES, ids=case_ids(IMAGE_CASES))
def test_image_rules_agree(helm4, chart_dir, tmp_path, name, image, accepted):
    full = {"tag": "", "digest": "", **image}
    assert chart_accepts(helm4, chart_dir, tmp_path, {"images": {name: full}}) is accepted
    assert (not rules.image_reference_problems(f"images.{name}", reference(full))) is accepted
    # The environment config the chart renders (and `tao-kfp render --config` reads).
    assert environment_accepts("images", {name: reference(full)}) is accepted


# ---------------------------------------------------------------------------------------------
# Cron, as KFP's API server parses it (robfig/cron v1.2.0)
# ---------------------------------------------------------------------------------------------

CRON_CASES = [
    ("0 0 * * *", True),
    ("0 0 2 * * *", True),
    ("*/15 * * * *", True),
    ("0 9-17 * * MON-FRI", True),
    ("0 0 1,15 * ?", True),
    ("59 23 31 12 6", True),
    ("0 0 1 jan-mar sun", True),
    ("5/10 * * * *", True),
    ("0 0 31 2 *", True),  # valid, but never fires: a warning, not a refusal
    ("60 * * * *", False),
    ("0 24 * * *", False),
    ("0 3 * * 7", False),
    ("0 0 0 * *", False),
    ("0 0 32 * *", False),
    ("0 0 * 13 *", False),
    ("0 0 * 0 *", False),
    ("60 0 0 * * *", False),
    ("*/0 * * * *", False),
    ("0 5-3 * * *", False),
    ("0 JAN * * *", False),
    ("0 0 * * FOO", False),
    ("@hourly", False),
    ("@daily", False),
    ("nightly", False),
    ("0 0 * *", False),
]


@pytest.mark.parametrize("cron, accepted", CRON_CASES, ids=case_ids(CRON_CASES))
def test_cron_rules_agree(helm4, chart_dir, tmp_path, cron, accepted):
    upload = {"experiment": "nightly", "recurringCron": cron, "runParams": {"dataset_path": "d"}}
    assert chart_accepts(helm4, chart_dir, tmp_path, {"upload": upload}) is accepted
    assert (not rules.cron_problems(cron)) is accepted
    if accepted:
        assert len(normalise_cron(cron).split()) == 6
    else:
        with pytest.raises(UploadError):
            normalise_cron(cron)


NEVER_FIRES = [
    ("0 0 31 2 *", True),
    ("0 0 30 2 *", True),
    ("0 0 31 4,6,9,11 *", True),
    ("0 0 29 2 *", False),  # leap years
    ("0 0 31 2,3 *", False),
    ("0 0 31 2 1", False),  # a restricted weekday ORs with the day
    ("0 0 * 2 *", False),
]


@pytest.mark.parametrize("cron, never", NEVER_FIRES, ids=case_ids(NEVER_FIRES))
def test_a_cron_that_never_fires_is_warned_about_by_both(helm4, chart_dir, tmp_path, cron, never):
    values = tmp_path / "cron.yaml"
    upload = {"experiment": "nightly", "recurringCron": cron, "runParams": {"dataset_path": "d"}}
    values.write_text(yaml.safe_dump({"upload": upload}))
    base = CI_DIR / "01-default-values.yaml"
    # NOTES.txt renders only on install; --dry-run=client needs no cluster (Helm 4).
    result = helm4.run(
        "install",
        "rel",
        str(chart_dir),
        "-n",
        "kubeflow",
        "-f",
        str(base),
        "-f",
        str(values),
        "--dry-run=client",
    )
    assert ("never fires" in result.stdout) is never, result.stdout[-2000:]
    assert rules.cron_never_fires(cron) is never


# ---------------------------------------------------------------------------------------------
# Credentials in URLs, NFS servers with a port, model keys TAO's launchers cannot carry
# ---------------------------------------------------------------------------------------------

URL_CASES = [
    ("datasetUrl", "https://data.example.com/flowers.tar.gz", True),
    ("datasetUrl", "https://alice:s3cr3tPW@data.example.com/flowers.tar.gz", False),
    ("datasetUrl", "https://alice@data.example.com/flowers.tar.gz", False),
    ("datasetUrl", "https://b.s3.amazonaws.com/f.tgz?X-Amz-Signature=ab&X-Amz-Date=1", False),
    ("datasetUrl", "https://storage.googleapis.com/b/f.tgz?X-Goog-Signature=ab", False),
    ("datasetUrl", "https://acct.blob.core.windows.net/c/f.tgz?sv=2022&sig=ab", False),
    ("datasetUrl", "https://data.example.com/f.tgz?version=2", True),
    ("datasetUrl", "https://data.example.com/team@2024/f.tgz", True),
    ("host", "http://ml-pipeline.kubeflow.svc.cluster.local:8888", True),
    ("host", "http://ml-pipeline.kubeflow.svc.cluster.local:8888/?token=abc123xyz", False),
    ("host", "http://ml-pipeline.kubeflow.svc.cluster.local:8888/x?access_token=abc123xyz", False),
    ("host", "http://user:s3cr3tPW@ml-pipeline.kubeflow.svc.cluster.local:8888", False),
]


def url_values(key: str, url: str) -> dict:
    if key == "host":
        return {"kfp": {"host": url}}
    return {"workspace": {"init": {"datasetUrl": url}}}


@pytest.mark.parametrize("key, url, accepted", URL_CASES, ids=case_ids(URL_CASES))
def test_url_credential_rules_agree(helm4, chart_dir, tmp_path, key, url, accepted):
    assert chart_accepts(helm4, chart_dir, tmp_path, url_values(key, url)) is accepted
    rule = rules.kfp_host_problems if key == "host" else rules.dataset_url_problems
    problems = rule(url)
    assert (not problems) is accepted
    if key == "host":  # and `tao-kfp upload --host`, before anything prints the host
        try:
            check_host(url)
        except UploadError as error:
            problems = [str(error)]
        assert (not problems) is accepted
    # The message says what is wrong without repeating the secret.
    assert not any(secret in " ".join(problems) for secret in ("s3cr3tPW", "abc123xyz"))


NFS_CASES = [
    ("nfs.example.com", True),
    ("10.0.0.5", True),
    ("fd00::5", True),
    ("nfs.example.com:2049", False),
    ("10.0.0.5:2049", False),
    ("nfs:", False),
]


@pytest.mark.parametrize("server, accepted", NFS_CASES, ids=case_ids(NFS_CASES))
def test_nfs_server_rules_agree(helm4, chart_dir, tmp_path, server, accepted):
    nfs = {"mode": "nfs", "nfs": {"server": server, "path": "/exports/tao"}}
    assert chart_accepts(helm4, chart_dir, tmp_path, {"workspace": nfs}) is accepted
    assert (not rules.nfs_server_problems(server)) is accepted


# Model keys reach every TAO step as `-k <key>`; TAO 5's launchers re-split the command line
# (issue 19 section 1). One case list for the chart and the launcher rule of the pipeline's steps.
MODEL_KEY_CASES = [
    ("nvidia_tlt", True),
    ("tlt_encode", True),
    ("aGVsbG8+/==", True),
    ("user@host:port,a%b", True),
    ("", False),
    ("my key", False),
    ("tab\there", False),
    ("it's", False),
    ('say"hi"', False),
    ("a\\b", False),
    ("a$HOME", False),
    ("a`id`", False),
    ("a;b", False),
    ("a|b", False),
    ("~/workspace", False),
    ("a*b", False),
]


@pytest.mark.parametrize("key, accepted", MODEL_KEY_CASES, ids=case_ids(MODEL_KEY_CASES))
def test_model_key_rules_agree(helm4, chart_dir, tmp_path, key, accepted):
    assert chart_accepts(helm4, chart_dir, tmp_path, {"ngc": {"modelKey": key}}) is accepted
    assert bool(re.match(rules.LAUNCHER_SAFE_PATTERN, key)) is accepted


# ---------------------------------------------------------------------------------------------
# Spec overrides: the chart at install, `tao-kfp spec render` in the init Job
# ---------------------------------------------------------------------------------------------

OVERRIDE_CASES = [
    ({"train_config": {"n_epochs": 10}}, True),
    ({"train_config.n_epochs": 10}, True),
    ({"train_config.optimizer.sgd.lr": 0.01}, True),
    ({"model_config": {"arch": "resnet", "resize_interpolation_method": "BICUBIC"}}, True),
    ({"train_config.image_mean": {"b": 103.9, "g": 116.8, "r": 123.7}}, True),
    ({"train_config.image_mean.b": 103.9}, True),
    ({"eval_config": None}, True),
    ({"train_config": {"n_epoch": 10}}, False),
    ({"train_config.n_epochs": "ten"}, False),
    ({"train_config.n_epochs": -1}, False),
    ({"train_config.n_epochs": 2.5}, False),
    ({"model_config.arch": 18}, False),
    ({"model_config.resize_interpolation_method": "NEAREST"}, False),
    ({"model_config.use_bias": "yes"}, False),
    ({"train_config.image_mean": 3}, False),
    ({"train_config.n_epochs.x": 1}, False),
    ({"eval_config": 7}, False),
    ({"nonsense": 1}, False),
    ({"train_config": {"optimizer": {"sgd": {"lr": 0.1}, "adam": {"lr": 0.1}}}}, False),
]


@pytest.mark.parametrize("overrides, accepted", OVERRIDE_CASES, ids=case_ids(OVERRIDE_CASES))
def test_spec_override_rules_agree(helm4, chart_dir, tmp_path, overrides, accepted):
    # The TF1 routes read the spec the init Job renders; the default route (6) reads none.
    values = {"specs": {"overrides": overrides}, "tao": {"version": "3"}}
    assert chart_accepts(helm4, chart_dir, tmp_path, values) is accepted
    assert (not rules.spec_override_problems(overrides)) is accepted
    assert (not rules.values_problems(values)[0]) is accepted


@pytest.mark.parametrize("version, accepted", [("6", False), ("5", True), ("3", True)])
def test_spec_overrides_only_where_the_route_reads_a_workspace_spec(
    helm4, chart_dir, tmp_path, version, accepted
):
    values = {
        "specs": {"overrides": {"train_config": {"n_epochs": 10}}},
        "tao": {"version": version},
    }
    assert chart_accepts(helm4, chart_dir, tmp_path, values) is accepted
    assert (not rules.values_problems(values)[0]) is accepted


def test_the_chart_reads_the_spec_fields_of_the_spec_module():
    """files/specs/spec-fields.json is written by `python -m tao_kfp.value_rules`."""
    shipped = json.loads((REPO / "files/specs/spec-fields.json").read_text())
    assert shipped == rules.spec_field_table(), (
        "files/specs/spec-fields.json is stale: "
        "run .venv/bin/python -m tao_kfp.value_rules > files/specs/spec-fields.json"
    )


# ---------------------------------------------------------------------------------------------
# Run parameters and the KFP backend floor
# ---------------------------------------------------------------------------------------------

RUN_PARAM_CASES = [
    ({"dataset_path": "data/flowers"}, True),
    ({"dataset_path": "data/flowers", "epochs": 5, "learning_rate": 0.01}, True),
    ({"dataset_path": "data/flowers", "learning_rate": 1}, True),
    ({"dataset_path": "data/flowers", "epochs": 5.0}, True),
    ({"dataset_path": "data/flowers", "epochs": 2.5}, False),
    ({"dataset_path": "data/flowers", "epochs": "5"}, False),
    ({"dataset_path": 5}, False),
    ({"dataset_path": "data/flowers", "epoch": 5}, False),
    ({"epochs": 5}, False),
    ({"dataset_path": "data/flowers", "num_gpus": 2}, False),
]


@pytest.mark.parametrize("params, accepted", RUN_PARAM_CASES, ids=case_ids(RUN_PARAM_CASES))
def test_run_parameter_rules_agree(helm4, chart_dir, tmp_path, params, accepted):
    upload = {"experiment": "e", "runFirst": True, "runParams": params}
    assert chart_accepts(helm4, chart_dir, tmp_path, {"upload": upload}) is accepted
    try:
        check_run_params(params, PACKAGE, runs_start=True)
    except UploadError:
        assert not accepted
    else:
        assert accepted


BACKEND_CASES = [
    ("2.5.0", True),
    ("2.15.0", True),
    ("v2.16.1", True),
    ("2.17", True),
    ("2.15.0-rc.1", True),
    ("3.0.0", True),
    ("2.4.1", True),
    ("2.0.5", True),
    ("1.8.5", False),
    ("latest", False),
    ("2", False),
]


def backend_accepts(text: str) -> bool:
    from tao_kfp.kfp_backends import KfpBackend

    try:
        KfpBackend.parse(text).check_supported()
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("version, accepted", BACKEND_CASES, ids=case_ids(BACKEND_CASES))
def test_backend_floor_agrees(helm4, chart_dir, tmp_path, version, accepted):
    kfp = {"kfp": {"backendVersion": version}}
    assert chart_accepts(helm4, chart_dir, tmp_path, kfp) is accepted
    assert backend_accepts(version) is accepted
