"""What KFP's own API server answers, per release, where the uploader or a double relies on it.

Driven with kfp's own Client and plain HTTP. The differences from tests/doubles/kfp_api.py are
listed in docs/kfp-server-harness.md. The last three tests show the server doing what the
uploader's fixes guard against (test_deliberate_failures.py runs the uploader without them).
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from kfp_server_api import ApiException

from .conftest import PACKAGE

pytestmark = pytest.mark.kfp_server

API = "/apis/v2beta1"
RUN_PARAMS = {"dataset_path": "/workspace/e2e-dataset", "epochs": 3}

# Per release: the status of a duplicate pipeline name, the keys of a grpc-gateway error body,
# and the longest version name taken with the status of one character more.
RELEASES = {
    # 2.0.5: "Already exist error" as 500; the name column is varchar(255), MariaDB's strict
    # mode refuses longer (Error 1406), nothing validates before.
    "2.0.5": {
        "duplicate": 500,
        "error_keys": {"error", "code", "message", "details"},
        "version_name": (255, 500),
    },  # fmt: skip
    # 2.17.0: 409; names checked before the insert (validation/length.go:47,100).
    "2.17.0": {
        "duplicate": 409,
        "error_keys": {"code", "message", "details"},
        "version_name": (127, 400),
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def release(kfp_server) -> dict:
    known = RELEASES.get(kfp_server.env["KFP_TAG"])
    assert known, f"add what KFP {kfp_server.env['KFP_TAG']} answers to RELEASES"
    return known


def _error(call) -> ApiException:
    with pytest.raises(ApiException) as raised:
        call()
    return raised.value


def _upload(kfp_server, package_path, **params) -> requests.Response:
    with open(package_path, "rb") as package:
        return requests.post(
            f"{kfp_server.host}{API}/pipelines/upload",
            params=params,
            files={"uploadfile": ("pipeline.yaml", package)},
            timeout=30,
        )


def test_a_duplicate_name_answers_with_the_upload_endpoints_own_body(kfp_server, release, name):
    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    again = _upload(kfp_server, PACKAGE, name=name)
    assert again.status_code == release["duplicate"], again.text
    # The upload endpoint's own error body (server/pipeline_upload_server.go), not the
    # grpc-gateway one of the other endpoints.
    assert again.json().keys() == {"error_message", "error_details"}


def test_a_name_differing_only_in_case_is_a_duplicate(kfp_server, release, name):
    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    other = _upload(kfp_server, PACKAGE, name=name.upper())
    assert other.status_code == release["duplicate"], other.text


def test_the_equals_filter_ignores_case(kfp_server, client, name):
    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    found = client.list_pipelines(filter=json.dumps({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "stringValue": name.upper()}]}))  # fmt: skip
    assert [p.display_name for p in found.pipelines or []] == [name]


def test_the_longest_version_name(kfp_server, client, release, name):
    pipeline = client.upload_pipeline(str(PACKAGE), pipeline_name=name)
    longest, status = release["version_name"]

    def upload(version: str):
        return client.upload_pipeline_version(
            str(PACKAGE), pipeline_version_name=version, pipeline_id=pipeline.pipeline_id
        )

    assert upload("v" * longest).pipeline_version_id
    assert _error(lambda: upload("w" * (longest + 1))).status == status


# -- what the uploader's fixes guard against ----------------------------------------------------


@pytest.fixture
def version(kfp_server, client, name, tmp_path):
    """A pipeline version of the package as the uploader adapts it for this release."""
    import yaml

    from tao_kfp.kfp_backends import KfpBackend, adapt_for_backend
    from tao_kfp.package import dump_package

    docs = list(yaml.safe_load_all(PACKAGE.read_text()))
    docs, _ = adapt_for_backend(docs, KfpBackend.parse(kfp_server.env["KFP_TAG"]))
    path = tmp_path / "pipeline.yaml"
    path.write_text(dump_package(docs))
    pipeline = client.upload_pipeline(str(path), pipeline_name=name)
    [first] = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
    return first


def test_the_server_refuses_an_out_of_range_cron_only_after_the_upload(
    kfp_server, client, release, name, version
):
    experiment = client.create_experiment(name)
    refused = _error(lambda: client.create_recurring_run(
        experiment_id=experiment.experiment_id, job_name=name, cron_expression="0 61 3 * * *",
        params=RUN_PARAMS, pipeline_id=version.pipeline_id, version_id=version.pipeline_version_id,
    ))  # fmt: skip
    assert refused.status == 400
    body = json.loads(refused.body)
    assert body.keys() >= release["error_keys"] and "above maximum (59)" in body["message"], body


def test_the_server_refuses_a_run_parameter_of_the_wrong_type_only_at_run_creation(
    kfp_server, client, name, version
):
    experiment = client.create_experiment(name)
    refused = _error(lambda: client.run_pipeline(
        experiment_id=experiment.experiment_id, job_name=name,
        params={**RUN_PARAMS, "epochs": "three"},
        pipeline_id=version.pipeline_id, version_id=version.pipeline_version_id,
    ))  # fmt: skip
    assert refused.status == 400
    assert "input parameter epochs requires type" in json.loads(refused.body)["message"]


def _owned_workflows(custom_objects, owner_uid: str) -> list:
    listed = custom_objects.list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "kubeflow", "workflows"
    )["items"]
    return [
        w["metadata"]["name"] for w in listed
        if any(o.get("uid") == owner_uid for o in w["metadata"].get("ownerReferences", []))
    ]  # fmt: skip


@pytest.mark.parametrize("propagation_policy", [None, "ORPHAN"])
def test_deleting_a_recurring_run_deletes_its_workflow_in_flight_unless_orphaned_from_2_16(
    kfp_server, client, custom_objects, name, version, propagation_policy
):
    experiment = client.create_experiment(name)
    recurring = client.create_recurring_run(
        experiment_id=experiment.experiment_id, job_name=name, cron_expression="*/5 * * * * *",
        params=RUN_PARAMS, pipeline_id=version.pipeline_id,
        version_id=version.pipeline_version_id, max_concurrency=1,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while not (started := _owned_workflows(custom_objects, recurring.recurring_run_id)):
        assert time.monotonic() < deadline, "the ScheduledWorkflow controller started no Workflow"
        time.sleep(1)

    options = {"propagation_policy": propagation_policy} if propagation_policy else {}
    # 2.0.5 takes the unknown query parameter and ignores it (grpc-gateway).
    client._recurring_run_api.recurring_run_service_delete_recurring_run(
        recurring.recurring_run_id, **options
    )
    time.sleep(15)  # the garbage collector acts within seconds
    listed = custom_objects.list_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "kubeflow", "workflows"
    )["items"]
    left = [w["metadata"]["name"] for w in listed if w["metadata"]["name"] in started]
    orphaned = propagation_policy == "ORPHAN" and kfp_server.release >= (2, 16, 0)
    assert left == (started if orphaned else []), f"Workflows {started}, after the delete {left}"
