"""The upload adapts the package to the KFP backend the server reports (or --kfp-version states).

What each backend takes is tested in tests/package/test_backends.py; docs/kfp-backends.md
says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
import yaml

from doubles.kfp_api import FakeKfpApi
from helpers.packages import has_security_context
from tao_kfp.compiler import DEFAULT_OUTPUT
from upload.test_upload import NAME, upload

# The default install's package; the config below leaves tao.version to the default (6).
PACKAGE = DEFAULT_OUTPUT


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text("workspace:\n  claimName: team-claim\n")
    return path


def uploaded_docs(api: FakeKfpApi) -> List[dict]:
    [pipeline] = api.pipelines_named(NAME)
    text = api.versions_of(pipeline["pipeline_id"])[-1]["package_text"]
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize(
    "tag, stated, security_context, message",
    [
        pytest.param("2.16.0", None, True, "", id="2.16 reported"),
        pytest.param("2.15.0", None, False, "KFP 2.15.0: runAsUser", id="2.15 reported"),
        pytest.param(
            "2.15.0", "2.17.0", False, "--kfp-version 2.17.0 is not used", id="report wins"
        ),
        pytest.param("unknown", "2.14.0", False, "from --kfp-version", id="unknown, stated"),
    ],
)
def test_the_upload_adapts_to_the_version_the_server_reports(
    config, capsys, tag, stated, security_context, message
):
    api = FakeKfpApi(tag_name=tag).start()
    extra = ["--config", str(config)] + (["--kfp-version", stated] if stated else [])
    try:
        assert upload(api.url, PACKAGE, *extra) == 0
        docs = uploaded_docs(api)
    finally:
        api.stop()
    assert has_security_context(docs) is security_context
    assert "team-claim" in yaml.safe_dump(docs)
    assert message in capsys.readouterr().out


def test_unknown_never_means_newest_the_upload_stops_and_names_the_fix(config, capsys):
    # Stock KFP images before 2.16.0 answer tag_name "unknown" (backend/Dockerfile).
    api = FakeKfpApi(tag_name="unknown").start()
    try:
        assert upload(api.url, PACKAGE, "--config", str(config)) == 1
        assert api.state.pipelines == {}
    finally:
        api.stop()
    err = capsys.readouterr().err
    assert "kfp.backendVersion" in err and "1.10 -> 2.5.0" in err


def test_a_known_release_commit_decides_when_the_tag_is_unknown(config, capsys):
    api = FakeKfpApi(tag_name="unknown", commit_sha="417091dceddb1f35f26203f9779cb18ee260d6ad")
    api.start()
    try:
        assert upload(api.url, PACKAGE, "--config", str(config)) == 0
        docs = uploaded_docs(api)
    finally:
        api.stop()
    assert not has_security_context(docs)  # 2.14 rejects it at run creation
    out = capsys.readouterr().out
    assert "Adapting for KFP 2.14.4: from healthz commit_sha 417091dcedd" in out


@pytest.mark.parametrize("tag", ["2.0.5", "2.2.0", "2.4.1"])
def test_every_2x_backend_gets_a_package_it_can_run(config, capsys, tag):
    api = FakeKfpApi(tag_name=tag).start()
    try:
        assert upload(api.url, PACKAGE, "--config", str(config)) == 0
        docs = uploaded_docs(api)
    finally:
        api.stop()
    assert not has_security_context(docs)
    assert "lost" not in capsys.readouterr().err


def test_the_upload_refuses_a_kfp_v1_backend_naming_the_release(config, capsys):
    api = FakeKfpApi(tag_name="1.8.5").start()
    try:
        assert upload(api.url, PACKAGE, "--config", str(config)) == 1
        assert api.state.pipelines == {}
    finally:
        api.stop()
    err = capsys.readouterr().err
    assert "KFP v1 pipelines only" in err and "Kubeflow 1.8 (KFP 2.0.5)" in err


def test_verify_only_finds_the_version_uploaded_for_that_backend(config):
    api = FakeKfpApi(tag_name="2.14.0").start()
    try:
        assert upload(api.url, PACKAGE, "--config", str(config)) == 0
        assert upload(api.url, PACKAGE, "--config", str(config), "--verify-only") == 0
    finally:
        api.stop()
