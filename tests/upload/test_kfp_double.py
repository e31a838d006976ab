"""The KFP API double follows the real server where our uploader depends on it.

Driven with kfp's own Client (not our uploader), so the double's answers are checked against
what a real client sends. The server rules are cited in tests/doubles/kfp_api.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kfp.client import Client
from kfp_server_api import ApiException

from doubles.kfp_api import FakeKfpApi


@pytest.fixture
def client(kfp_api: FakeKfpApi, tmp_path: Path) -> Client:
    return Client(host=kfp_api.url, namespace="")


def _status(call) -> int:
    with pytest.raises(ApiException) as raised:
        call()
    return raised.value.status


# KFP 2.0.5's answers (500 for a duplicate in any case, the EQUALS filter ignoring case) are
# asserted against the real server by make e2e-kfp (tests/kfp_server/test_api_contract.py);
# 2.17.0's 409 and 127-character limit only where a 2.17.0 source tree is given, so here too.
def test_a_duplicate_name_in_another_case_is_a_409_on_new_servers(kfp_api, client, toy_packages):
    package, _ = toy_packages
    client.upload_pipeline(str(package), pipeline_name="toy")

    assert _status(lambda: client.upload_pipeline(str(package), pipeline_name="TOY")) == 409


def test_a_version_name_longer_than_127_is_refused_with_400(kfp_api, client, toy_packages):
    package, _ = toy_packages
    pipeline = client.upload_pipeline(str(package), pipeline_name="toy")

    def upload(name: str):
        return client.upload_pipeline_version(
            str(package), pipeline_version_name=name, pipeline_id=pipeline.pipeline_id
        )

    assert upload("v" * 127).pipeline_version_id
    assert _status(lambda: upload("w" * 128)) == 400


@pytest.mark.parametrize(
    "old, new",
    [
        ("schemaVersion: 2.1.0", "schemaVersion: 2.0.0"),
        ("  name: toy-pipeline", "  name: Toy_Pipeline"),
    ],
    ids=["schema version", "pipeline spec name"],
)
def test_an_invalid_spec_is_refused_with_400(kfp_api, client, toy_packages, tmp_path, old, new):
    package, _ = toy_packages
    text = package.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new))

    assert _status(lambda: client.upload_pipeline(str(bad), pipeline_name="toy")) == 400


def test_healthz_reports_the_backend_version(kfp_api, client):
    kfp_api.tag_name = "2.15.0"
    raw = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
    assert b'"tag_name": "2.15.0"' in raw.data
