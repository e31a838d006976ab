"""What KFP's own API server answers where tests/doubles/kfp_api.py claims to follow it.

Driven with kfp's own Client and plain HTTP, as tests/upload/test_kfp_double.py drives the
double; the differences found are listed in docs/kfp-server-harness.md.
"""

from __future__ import annotations

import json

import pytest
import requests
from kfp_server_api import ApiException

pytestmark = pytest.mark.kfp_server

API = "/apis/v2beta1"


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


def test_a_duplicate_name_answers_409_with_a_grpc_gateway_body(kfp_server, name):
    from .conftest import PACKAGE

    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    again = _upload(kfp_server, PACKAGE, name=name)
    assert again.status_code == 409, again.text
    # The upload endpoint's own error body (server/pipeline_upload_server.go:423-432), not the
    # grpc-gateway {"code", "message", "details"} of the other endpoints.
    assert again.json().keys() == {"error_message", "error_details"}


def test_a_name_differing_only_in_case_is_a_duplicate(kfp_server, name):
    from .conftest import PACKAGE

    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    other = _upload(kfp_server, PACKAGE, name=name.upper())
    assert other.status_code == 409, other.text


def test_the_equals_filter_ignores_case(kfp_server, client, name):
    from .conftest import PACKAGE

    assert _upload(kfp_server, PACKAGE, name=name).status_code == 200
    found = client.list_pipelines(filter=json.dumps({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "stringValue": name.upper()}]}))  # fmt: skip
    assert [p.display_name for p in found.pipelines or []] == [name]


def test_a_version_name_longer_than_127_is_refused(kfp_server, client, name):
    from .conftest import PACKAGE

    pipeline = client.upload_pipeline(str(PACKAGE), pipeline_name=name)

    def upload(version: str):
        return client.upload_pipeline_version(
            str(PACKAGE), pipeline_version_name=version, pipeline_id=pipeline.pipeline_id
        )

    assert upload("v" * 127).pipeline_version_id
    # Checked before the insert (validation/length.go:47,100); the double answered 500 before.
    assert _error(lambda: upload("w" * 128)).status == 400


def test_healthz_fields(kfp_server):
    answer = requests.get(f"{kfp_server.host}{API}/healthz", timeout=10).json()
    assert answer.keys() == {"commit_sha", "tag_name", "multi_user", "pipeline_store"}, answer
