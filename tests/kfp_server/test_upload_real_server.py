"""``tao-kfp upload`` against KFP's own API server (``make e2e-kfp``; see
docs/kfp-server-harness.md). What no test double can settle: names under MySQL's collation,
the server's version report, and which Kubernetes objects a run and a recurring run make.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, List

import pytest
import requests

from .conftest import PACKAGE, TAO_KFP

pytestmark = pytest.mark.kfp_server

PREFIX = "0.0.0-e2e"
RUN_PARAMS = {"dataset_path": "/workspace/e2e-dataset", "epochs": 3}


def _version_name(kfp_server, package: Path) -> str:
    """The version name the uploader gives ``package`` on this server (adapted to its release)."""
    from tao_kfp.package import read_package
    from tao_kfp.upload.command import _package_for_server

    text, docs = read_package(package)
    inputs = SimpleNamespace(
        package_docs=docs, package_text=text, stated_backend=None, version_prefix=PREFIX
    )
    reported = (kfp_server.env["KFP_TAG_NAME"], kfp_server.env["KFP_COMMIT"])
    with tempfile.TemporaryDirectory() as scratch:
        return _package_for_server(inputs, reported, Path(scratch))[0]


def _eventually(what: str, probe: Callable[[], Any], seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not seen within {seconds:.0f} s")
        time.sleep(1)


def _pipelines(client, name: str) -> List[Any]:
    """Every pipeline whose name equals ``name`` in any case (the server's collation)."""
    found = client.list_pipelines(page_size=100).pipelines or []
    return [p for p in found if p.display_name.casefold() == name.casefold()]


def _versions(client, pipeline_id: str) -> List[str]:
    found = client.list_pipeline_versions(pipeline_id, page_size=100).pipeline_versions or []
    return sorted(v.display_name for v in found)


def _owned_by(workflows: List[dict], recurring_run_id: str) -> List[dict]:
    """The Workflows whose owner is the ScheduledWorkflow of that recurring run."""
    return [
        w for w in workflows
        if any(o.get("uid") == recurring_run_id for o in w["metadata"].get("ownerReferences", []))
    ]  # fmt: skip


def _workflows(custom_objects, selector: str) -> List[dict]:
    listed = custom_objects.list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "kubeflow", "workflows", label_selector=selector
    )
    return listed["items"]


def _assert_still_there(
    started: List[dict], list_workflows: Callable[[], List[dict]], detail=""
) -> None:
    """The old schedule's Workflows outlived its deletion (or the move that disabled it)."""
    time.sleep(15)  # the garbage collector acts within seconds of the owner's deletion
    names = {w["metadata"]["name"] for w in list_workflows()}
    lost = [w["metadata"]["name"] for w in started if w["metadata"]["name"] not in names]
    assert not lost, f"the old schedule's Workflows {lost} were deleted with it{detail}"


# What each release's healthz answers (v2beta1, v1beta1); main.go of each tag.
HEALTHZ_FIELDS = {
    "2.0.5": ({"commit_sha", "tag_name", "multi_user"}, {"commit_sha", "tag_name", "multi_user"}),
    "2.17.0": (
        {"commit_sha", "tag_name", "multi_user", "pipeline_store"},
        {"commit_sha", "tag_name", "multi_user"},
    ),
}


def test_healthz_reports_what_the_adapt_path_reads(kfp_server):
    from tao_kfp.upload.command import _choose_backend

    expected = HEALTHZ_FIELDS.get(kfp_server.env["KFP_TAG"])
    assert expected, f"add what KFP {kfp_server.env['KFP_TAG']}'s healthz answers to HEALTHZ_FIELDS"
    for api, fields in zip(("v2beta1", "v1beta1"), expected):
        answer = requests.get(f"{kfp_server.host}/apis/{api}/healthz", timeout=10).json()
        assert answer.keys() == fields, (api, answer)
        # As the release image sets them (hack/kfp-server/up.sh: TAG_NAME, COMMIT_SHA).
        assert answer["tag_name"] == kfp_server.env["KFP_TAG_NAME"], answer
        assert answer["commit_sha"] == kfp_server.env["KFP_COMMIT"], answer
        assert answer["multi_user"] is (kfp_server.env["KFP_MULTI_USER"] == "true"), answer
        backend = _choose_backend((answer["tag_name"], answer["commit_sha"]), None)
        assert str(backend) == kfp_server.env["KFP_TAG"]
    # A build without the release's build arguments says "unknown": the commit still decides.
    assert (
        str(_choose_backend(("unknown", kfp_server.env["KFP_COMMIT"]), None))
        == kfp_server.env["KFP_TAG"]
    )


def test_first_upload_then_rerun_then_changed_package(kfp_server, client, name, changed_package):
    first = kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX
    )
    ours = _version_name(kfp_server, PACKAGE)
    [pipeline] = _pipelines(client, name)
    # The upload call stores the package as a first version named after the pipeline.
    assert _versions(client, pipeline.pipeline_id) == sorted([name, ours]), first.stdout

    again = kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX
    )
    assert "unchanged" in again.stdout
    assert _versions(client, pipeline.pipeline_id) == sorted([name, ours])

    kfp_server.upload(
        "--package", str(changed_package), "--pipeline-name", name, "--version-prefix", PREFIX
    )
    changed = _version_name(kfp_server, changed_package)
    assert re.fullmatch(rf"{re.escape(PREFIX)}-[0-9a-f]{{10}}", changed)
    assert _versions(client, pipeline.pipeline_id) == sorted([name, ours, changed])
    assert len(_pipelines(client, name)) == 1


def test_a_name_differing_only_in_case_is_refused_naming_the_existing_one(kfp_server, client, name):
    kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX
    )
    other = name.upper()

    result = kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", other, "--version-prefix", PREFIX,
        check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert f"clashes with the existing pipeline '{name}'" in result.stdout + result.stderr
    assert [p.display_name for p in _pipelines(client, name)] == [name]


def test_two_racing_uploads_leave_no_duplicate(kfp_server, client, name):
    command = [
        str(TAO_KFP), "upload", "--host", kfp_server.host, "--package", str(PACKAGE),
        "--pipeline-name", name, "--version-prefix", PREFIX, "--deadline-seconds", "120",
    ]  # fmt: skip
    racers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True) for _ in range(2)]  # fmt: skip
    outputs = [racer.communicate(timeout=180)[0] for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], outputs
    [pipeline] = _pipelines(client, name)
    ours = _version_name(kfp_server, PACKAGE)
    assert _versions(client, pipeline.pipeline_id) == sorted([name, ours]), outputs


def test_run_first_creates_a_workflow_with_our_run_parameters(
    kfp_server, client, custom_objects, name
):
    kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX,
        "--run-first", "--run-params", json.dumps(RUN_PARAMS),
    )  # fmt: skip

    experiment = client.get_experiment(experiment_name=name)
    [run] = client.list_runs(experiment_id=experiment.experiment_id).runs
    assert run.runtime_config.parameters == RUN_PARAMS
    [workflow] = _eventually(
        "the run's Workflow", lambda: _workflows(custom_objects, f"pipeline/runid={run.run_id}")
    )
    # The Argo compiler hands the run parameters to the root driver as its runtime config.
    text = json.dumps(workflow["spec"])
    assert "/workspace/e2e-dataset" in text


def test_a_cron_is_accepted_and_its_scheduled_workflow_exists(
    kfp_server, client, custom_objects, name
):
    kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX,
        "--recurring-cron", "0 3 * * 1-5", "--run-params", json.dumps(RUN_PARAMS),
    )  # fmt: skip

    experiment = client.get_experiment(experiment_name=name)
    [recurring] = client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
    assert recurring.trigger.cron_schedule.cron == "0 0 3 * * 1-5"
    assert recurring.status == "ENABLED"
    # The recurring run's id is its ScheduledWorkflow's uid (resource/resource_manager.go:1391).
    swfs = custom_objects.list_namespaced_custom_object(
        "kubeflow.org", "v1beta1", "kubeflow", "scheduledworkflows"
    )["items"]
    [swf] = [s for s in swfs if s["metadata"]["uid"] == recurring.recurring_run_id]
    assert swf["spec"]["trigger"]["cronSchedule"]["cron"] == "0 0 3 * * 1-5"
    assert swf["spec"]["enabled"] is True


def test_an_out_of_range_cron_is_refused_before_anything_is_uploaded(kfp_server, client, name):
    # robfig/cron v1, which the server parses with, allows minutes 0-59.
    result = kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX,
        "--recurring-cron", "61 3 * * *", "--run-params", json.dumps(RUN_PARAMS), check=False,
    )  # fmt: skip

    # The server refuses it only at recurring-run creation, after the upload: the uploader
    # must check the ranges first.
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert _pipelines(client, name) == [], f"a refused cron must leave nothing uploaded:\n{output}"


def test_a_run_parameter_of_the_wrong_type_is_refused_before_anything_is_uploaded(
    kfp_server, client, name
):
    result = kfp_server.upload(
        "--package", str(PACKAGE), "--pipeline-name", name, "--version-prefix", PREFIX,
        "--run-first", "--run-params", json.dumps({**RUN_PARAMS, "epochs": "three"}), check=False,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert _pipelines(client, name) == [], f"a refused run must leave nothing uploaded:\n{output}"
    assert "'epochs' must be an integer" in output


def _finish(custom_objects, workflows: List[dict]) -> None:
    """Marks Workflows Succeeded, as Argo's controller would (none runs here)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for workflow in workflows:
        custom_objects.patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "kubeflow", "workflows", workflow["metadata"]["name"],
            {"status": {"phase": "Succeeded", "startedAt": now, "finishedAt": now}},
        )  # fmt: skip


def test_moving_the_schedule_keeps_the_workflow_the_old_schedule_started(
    kfp_server, client, custom_objects, name, changed_package
):
    common = ["--pipeline-name", name, "--version-prefix", PREFIX,
              "--run-params", json.dumps(RUN_PARAMS)]  # fmt: skip
    # Every 5 seconds (KFP's six-field cron), so the controller starts a Workflow soon.
    kfp_server.upload("--package", str(PACKAGE), "--recurring-cron", "*/5 * * * * *", *common)
    experiment = client.get_experiment(experiment_name=name)
    [old] = client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
    started = _eventually(
        "a Workflow started by the first schedule",
        lambda: _owned_by(_workflows(custom_objects, ""), old.recurring_run_id),
    )
    if kfp_server.release < (2, 16, 0):
        # The safe sequence reads the schedule's runs from the API; the persistence agent
        # reports the controller's Workflows there.
        _eventually(
            "the old schedule's run in the API",
            lambda: [
                r
                for r in client.list_runs(experiment_id=experiment.experiment_id).runs or []
                if r.recurring_run_id == old.recurring_run_id
            ],  # fmt: skip
        )

    moved = kfp_server.upload(
        "--package", str(changed_package), "--recurring-cron", "*/5 * * * * *", *common
    )
    recurring = client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
    [new] = [r for r in recurring if r.status == "ENABLED"]
    assert new.recurring_run_id != old.recurring_run_id

    _assert_still_there(started, lambda: _workflows(custom_objects, ""))

    left = {r.recurring_run_id: r.status for r in client.list_recurring_runs(
        experiment_id=experiment.experiment_id).recurring_runs}  # fmt: skip
    if kfp_server.release >= (2, 16, 0):
        # Deleted with propagation_policy ORPHAN: the Workflows lose their owner and stay.
        assert left == {new.recurring_run_id: "ENABLED"}, moved.stdout
        return
    # Before 2.16: disabled, kept while its run is going, deleted by the next upload after.
    assert left == {old.recurring_run_id: "DISABLED", new.recurring_run_id: "ENABLED"}, moved.stdout
    assert "disabled, not deleted" in moved.stdout
    _finish(custom_objects, _owned_by(_workflows(custom_objects, ""), old.recurring_run_id))
    _eventually(
        "the old schedule's runs reported finished",
        lambda: all(
            r.state == "SUCCEEDED"
            for r in client.list_runs(experiment_id=experiment.experiment_id).runs or []
            if r.recurring_run_id == old.recurring_run_id
        ),  # fmt: skip
    )
    again = kfp_server.upload(
        "--package", str(changed_package), "--recurring-cron", "*/5 * * * * *", *common
    )
    left = [r.recurring_run_id for r in client.list_recurring_runs(
        experiment_id=experiment.experiment_id).recurring_runs]  # fmt: skip
    assert left == [new.recurring_run_id], again.stdout
