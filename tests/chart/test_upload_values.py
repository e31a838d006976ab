"""The chart's `kfp.*`/`upload.*` values: hosts the upload can use, the KFP backend version,
and the recurring-run lifecycle hooks (post-rollback, pre-delete), under Helm 3 and Helm 4."""

from __future__ import annotations

import json
import re

import pytest
from chart_helpers import CI_DIR, RELEASE, find, namespace_of, one, parse_docs, template_args

from tao_kfp.cli import build_parser

FULL = f"{RELEASE}-tao-kfp"
MULTI_USER = CI_DIR / "05-multi-user-values.yaml"
DEFAULT = CI_DIR / "01-default-values.yaml"


def render(helm, chart_dir, values=(DEFAULT,), **sets):
    # Installed where the last values file says KFP runs the pipeline's pods.
    values = list(values)
    namespace = namespace_of(values[-1])
    return helm.run(*template_args(chart_dir, values, sets, namespace=namespace), check=False)


def args_of(job: dict) -> list:
    return job["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("http://", id="no host"),
        pytest.param("http:///apis", id="empty host with path"),
        pytest.param("http://ml-pipeline:99999", id="port 99999"),
        pytest.param("http://ml-pipeline:0", id="port 0"),
        pytest.param("http://[fd00::1:8888", id="unclosed IPv6 bracket"),
        pytest.param("ftp://ml-pipeline:8888", id="ftp scheme"),
        pytest.param("http://ml-pipeline:8888\nevil: true", id="newline"),
    ],
)
def test_hosts_the_upload_cannot_use_are_refused_at_install(helm, chart_dir, host):
    result = render(helm, chart_dir, **{"kfp.host": host})
    assert result.returncode != 0
    location = "- kfp.host:" if helm.name == "helm3" else "at '/kfp/host'"
    assert location in result.stderr and "pattern" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "host",
    [
        "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        "https://kubeflow.example.com/pipeline",
        "http://[fd00::1]:8888",
        "http://10.0.0.7:65535",
    ],
)
def test_hosts_the_upload_can_use_render(helm, chart_dir, host):
    # An external host does not name the namespace of KFP's pods: kfp.pipelineNamespace does.
    result = render(helm, chart_dir, **{"kfp.host": host, "kfp.pipelineNamespace": "kubeflow"})
    assert result.returncode == 0, result.stderr
    # The same host passes the uploader's own check (argparse + tao_kfp.upload.inputs.check_host).
    from tao_kfp.upload.inputs import check_host

    check_host(host)


@pytest.mark.parametrize("version", ["latest", "1.8.5", "2.16.0\nx: y"])
def test_a_kfp_v1_backend_or_not_a_version_is_refused(helm, chart_dir, version):
    result = render(helm, chart_dir, **{"kfp.backendVersion": version})
    assert result.returncode != 0
    location = "- kfp.backendVersion:" if helm.name == "helm3" else "at '/kfp/backendVersion'"
    assert location in result.stderr, result.stderr


@pytest.mark.parametrize("version", ["2.0.5", "2.2.0", "2.15.0"])
def test_a_stated_backend_version_reaches_the_upload_and_the_test(helm, chart_dir, version):
    # Kubeflow 1.8 and 1.9 (KFP 2.0.5, 2.2.0) are supported through the adapt path too.
    result = render(helm, chart_dir, [DEFAULT], **{"kfp.backendVersion": version})
    assert result.returncode == 0, result.stderr
    docs = parse_docs(result.stdout)
    upload = args_of(one(docs, "Job", f"{FULL}-upload"))
    verify = one(docs, "Pod", f"{FULL}-test-kfp")["spec"]["containers"][0]["args"]
    # The verify-only test must adapt exactly as the upload did, or it looks for another hash.
    assert f"--kfp-version={version}" in upload and f"--kfp-version={version}" in verify
    build_parser().parse_args(upload)  # the flags exist


def test_the_upload_runs_after_rollback_and_the_schedule_is_disabled_on_uninstall(helm, chart_dir):
    result = render(helm, chart_dir, [DEFAULT, MULTI_USER])
    assert result.returncode == 0, result.stderr
    docs = parse_docs(result.stdout)
    upload = one(docs, "Job", f"{FULL}-upload")
    assert "post-rollback" in upload["metadata"]["annotations"]["helm.sh/hook"].split(",")

    unschedule = one(docs, "Job", f"{FULL}-unschedule")
    annotations = unschedule["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-delete"
    # Nothing of the Job survives the uninstall once it succeeded.
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"].split(",")
    args = args_of(unschedule)
    assert "--disable-recurring-run" in args and "--experiment=tao-nightly" in args
    parsed = build_parser().parse_args(args)
    assert parsed.disable_recurring_run and parsed.deadline_seconds == 120
    # Same identity, token and CA bundle as the upload Job.
    spec, upload_spec = unschedule["spec"]["template"]["spec"], upload["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == upload_spec["serviceAccountName"]
    assert spec["volumes"] == upload_spec["volumes"]


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param({"upload.disableRecurringRunOnUninstall": "false"}, id="opted out"),
        pytest.param({"upload.recurringCron": "", "upload.runFirst": "true"}, id="no schedule"),
    ],
)
def test_no_uninstall_job_without_a_schedule_or_when_opted_out(helm, chart_dir, sets):
    result = render(helm, chart_dir, [DEFAULT, MULTI_USER], **sets)
    assert result.returncode == 0, result.stderr
    assert not find(parse_docs(result.stdout), "Job", f"{FULL}-unschedule")


def test_run_params_that_fit_render_as_json(helm, chart_dir, tmp_path):
    values = tmp_path / "params.yaml"
    values.write_text(
        "upload:\n  experiment: nightly\n  runFirst: true\n  runParams:\n"
        "    dataset_path: data/digits\n    epochs: 5\n    learning_rate: 0.01\n"
    )
    result = render(helm, chart_dir, [DEFAULT, values])
    assert result.returncode == 0, result.stderr
    upload = args_of(one(parse_docs(result.stdout), "Job", f"{FULL}-upload"))
    [params] = [a.split("=", 1)[1] for a in upload if a.startswith("--run-params=")]
    assert json.loads(params) == {"dataset_path": "data/digits", "epochs": 5, "learning_rate": 0.01}


def test_rollback_rewrites_the_spec_before_the_upload_moves_the_schedule_back(helm, chart_dir):
    # The pipeline reads specs/<fileName> at run time: after `helm rollback` the recurring run
    # is back on the older version, so the spec must be back to the older specs.overrides too.
    result = render(helm, chart_dir, [DEFAULT])
    assert result.returncode == 0, result.stderr
    docs = parse_docs(result.stdout)
    init = one(docs, "Job", f"{FULL}-workspace-init")["metadata"]["annotations"]
    upload = one(docs, "Job", f"{FULL}-upload")["metadata"]["annotations"]
    assert "post-rollback" in init["helm.sh/hook"].split(",")
    assert int(init["helm.sh/hook-weight"]) < int(upload["helm.sh/hook-weight"])


def test_readme_install_commands_give_helm_a_timeout_longer_than_the_upload_job(helm, chart_dir):
    # Helm waits --timeout (default 5m) for each hook Job: the README's own install commands
    # must follow its "Install timeouts" advice for the default values they install with.
    result = render(helm, chart_dir, [DEFAULT])
    assert result.returncode == 0, result.stderr
    deadline = one(parse_docs(result.stdout), "Job", f"{FULL}-upload")["spec"][
        "activeDeadlineSeconds"
    ]
    readme = (chart_dir / "README.md").read_text()
    commands = re.findall(r"helm install tao dist/(?:[^\n\\]|\\\n)*", readme)
    assert commands
    for command in commands:
        timeout = re.search(r"--timeout (\d+)m", command)
        assert timeout and int(timeout.group(1)) * 60 > deadline, command


def test_multi_user_without_namespace_names_only_that_fix(helm, chart_dir):
    # The profile namespace is the one missing value; the in-cluster kfp.host does name KFP's
    # namespace, and standalone-KFP advice (set kfp.pipelineNamespace) would mislead.
    result = render(helm, chart_dir, [DEFAULT], **{"kfp.mode": "multiUser"})
    assert result.returncode != 0
    assert "kfp.namespace is empty but kfp.mode is multiUser" in result.stderr
    assert "standalone" not in result.stderr and "does not name" not in result.stderr


def test_readme_install_timeouts_cover_the_init_jobs_dataset_download(helm, chart_dir):
    # With a dataset URL the init Job (a hook Helm waits --timeout for, like the upload) may run
    # up to its own deadline, far beyond the 20m the upload table recommends.
    result = render(helm, chart_dir, [DEFAULT], **{"workspace.init.datasetUrl": "https://x/d.tgz"})
    assert result.returncode == 0, result.stderr
    init = one(parse_docs(result.stdout), "Job", f"{FULL}-workspace-init")
    assert init["spec"]["activeDeadlineSeconds"] > 20 * 60
    readme = (chart_dir / "README.md").read_text()
    section = readme.split("### Install timeouts", 1)[1].split("\n### ", 1)[0]
    assert "workspace.init.datasetUrl" in section
    assert "workspace.init.activeDeadlineSeconds" in section
