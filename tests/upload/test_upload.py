"""End-to-end tests of ``tao-kfp upload``: the real kfp Client against the KFP API test double."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Tuple

import pytest

from doubles.kfp_api import API, FakeKfpApi, RecordedRequest, ScriptedAnswer
from tao_kfp.cli import main as cli_main
from tao_kfp.upload import RetryPolicy, main

# Millisecond waits keep retry tests fast; the request timeouts bound the "hang" test.
FAST = RetryPolicy(
    first_wait_seconds=0.005,
    max_wait_seconds=0.05,
    connect_timeout_seconds=1.0,
    read_timeout_seconds=1.0,
)
NAME = "toy"
PREFIX = "1.2.3"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token-value.signature"


def upload(host: str, package: Path, *extra: str, deadline: float = 20.0, policy=FAST) -> int:
    argv = [
        "--package", str(package),
        "--host", host,
        "--pipeline-name", NAME,
        "--version-prefix", PREFIX,
        "--deadline-seconds", str(deadline),
        *extra,
    ]  # fmt: skip
    return main(argv, policy=policy)


def version_of(package: Path) -> str:
    """The version name the spec asks for: <prefix>-<first 10 hex of sha256(YAML text)>."""
    return f"{PREFIX}-{hashlib.sha256(package.read_text().encode()).hexdigest()[:10]}"


def posts(api: FakeKfpApi, path: str) -> List[RecordedRequest]:
    return [r for r in api.requests if r.method == "POST" and r.path == f"{API}{path}"]


def the_pipeline(api: FakeKfpApi) -> dict:
    [pipeline] = api.pipelines_named(NAME)
    return pipeline


def version_names(api: FakeKfpApi) -> List[str]:
    return [v["name"] for v in api.versions_of(the_pipeline(api)["pipeline_id"])]


# -- install, upgrade, re-run ----------------------------------------------------------------


def test_first_install_creates_the_pipeline_and_a_version_named_prefix_hash(
    kfp_api, toy_packages, capsys, hermetic_kfp
):
    package, _ = toy_packages
    assert upload(kfp_api.url, package) == 0

    pipeline = the_pipeline(kfp_api)
    versions = {v["name"]: v for v in kfp_api.versions_of(pipeline["pipeline_id"])}
    ours = versions[version_of(package)]
    assert ours["package_text"] == package.read_text()
    # The upload API stores the first upload as a version named after the pipeline.
    assert list(versions) == [NAME, version_of(package)]
    out = capsys.readouterr().out
    assert f"Pipeline '{NAME}' created (id {pipeline['pipeline_id']})" in out
    assert (
        f"Pipeline version '{version_of(package)}' created (id {ours['pipeline_version_id']})"
        in out
    )
    assert not hermetic_kfp.exists(), "kfp must not write ~/.config/kfp/context.json"


def test_a_changed_package_adds_a_version_to_the_existing_pipeline(kfp_api, toy_packages, capsys):
    first, second = toy_packages
    assert upload(kfp_api.url, first) == 0
    assert upload(kfp_api.url, second) == 0

    assert version_names(kfp_api) == [NAME, version_of(first), version_of(second)]
    assert len(posts(kfp_api, "/pipelines/upload")) == 1
    out = capsys.readouterr().out
    assert f"Pipeline '{NAME}' exists" in out
    assert f"Pipeline version '{version_of(second)}' created" in out


def test_an_unchanged_rerun_creates_nothing(kfp_api, toy_packages, capsys):
    package, _ = toy_packages
    assert upload(kfp_api.url, package) == 0
    writes_before = [r for r in kfp_api.requests if r.method == "POST"]
    capsys.readouterr()

    assert upload(kfp_api.url, package) == 0

    assert [r for r in kfp_api.requests if r.method == "POST"] == writes_before
    assert version_names(kfp_api) == [NAME, version_of(package)]
    assert f"Pipeline version '{version_of(package)}' unchanged" in capsys.readouterr().out


# -- retries and deadline --------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({}, id="first two requests of any kind"),
        pytest.param(
            {"method": "POST", "path": f"{API}/pipelines/upload"}, id="the pipeline upload"
        ),
    ],
)
def test_5xx_twice_then_success(kfp_api, toy_packages, capsys, where):
    package, _ = toy_packages
    kfp_api.fail(2, status=503, message="upstream connect error", **where)

    assert upload(kfp_api.url, package) == 0

    assert version_names(kfp_api) == [NAME, version_of(package)]
    err = capsys.readouterr().err
    assert err.count("retrying in") == 2
    assert "HTTP 503" in err and "upstream connect error" in err


def test_connection_refused_until_the_api_listens_then_success(toy_packages, capsys):
    package, _ = toy_packages
    api = FakeKfpApi().start(listening=False)  # bound, so the port stays ours; refuses
    try:
        api.listen_after(0.3)
        assert upload(api.url, package, deadline=30) == 0
        assert version_names(api) == [NAME, version_of(package)]
    finally:
        api.stop()
    err = capsys.readouterr().err
    assert "Connection refused" in err and "retrying in" in err


def test_unreachable_past_the_deadline_fails_with_what_to_check(toy_packages, capsys):
    package, _ = toy_packages
    api = FakeKfpApi().start(listening=False)
    try:
        assert upload(api.url, package, deadline=0.3) == 1
    finally:
        api.stop()
    err = capsys.readouterr().err
    assert f"The KFP API at {api.url} was unreachable for" in err
    assert "Connection refused" in err
    for check in ("Kubeflow Pipelines is installed", "--host", "NetworkPolicy", "Istio"):
        assert check in err


def test_5xx_until_the_deadline_fails_quoting_the_last_answer(kfp_api, toy_packages, capsys):
    package, _ = toy_packages
    kfp_api.fail(10**6, status=503, message="no healthy upstream")

    assert upload(kfp_api.url, package, deadline=0.3) == 1

    err = capsys.readouterr().err
    assert "was unreachable for" in err and "HTTP 503" in err and "no healthy upstream" in err
    assert kfp_api.state.pipelines == {}


def test_a_request_that_hangs_times_out_and_is_retried(kfp_api, toy_packages):
    package, _ = toy_packages
    kfp_api.script(ScriptedAnswer(times=1, path=f"{API}/healthz", hang_seconds=3))
    policy = RetryPolicy(0.005, 0.05, connect_timeout_seconds=1.0, read_timeout_seconds=0.3)

    assert upload(kfp_api.url, package, policy=policy) == 0

    assert len(kfp_api.requests_to("GET", f"{API}/healthz")) >= 2
    assert version_names(kfp_api) == [NAME, version_of(package)]


# -- conflicts and rejections ----------------------------------------------------------------


def test_409_from_a_concurrent_install_of_the_same_content_counts_as_present(
    kfp_api, toy_packages, capsys
):
    package, _ = toy_packages

    def concurrent_install(api: FakeKfpApi) -> None:
        api.add_pipeline(NAME, package.read_text(), version_name=version_of(package))

    kfp_api.fail(
        1,
        status=409,
        message="Failed to create a pipeline and a pipeline version",
        method="POST",
        path=f"{API}/pipelines/upload",
        side_effect=concurrent_install,
    )

    assert upload(kfp_api.url, package) == 0

    assert version_names(kfp_api) == [NAME, version_of(package)]
    assert posts(kfp_api, "/pipelines/upload_version") == []
    out = capsys.readouterr().out
    assert "created concurrently" in out
    assert f"Pipeline version '{version_of(package)}' unchanged" in out


def test_409_on_the_version_upload_for_our_own_content_counts_as_present(
    kfp_api, toy_packages, capsys
):
    package, _ = toy_packages
    pipeline = kfp_api.add_pipeline(NAME, package.read_text())
    kfp_api.fail(
        1,
        status=409,
        message="Failed to create a pipeline version",
        method="POST",
        path=f"{API}/pipelines/upload_version",
        side_effect=lambda api: api.add_version(
            pipeline["pipeline_id"], version_of(package), package.read_text()
        ),
    )

    assert upload(kfp_api.url, package) == 0

    assert version_names(kfp_api) == [NAME, version_of(package)]
    assert "uploaded concurrently" in capsys.readouterr().out


@pytest.mark.parametrize(
    "path", ["/pipelines/upload", "/pipelines/upload_version"], ids=["pipeline", "version"]
)
def test_409_for_something_we_cannot_find_fails_with_the_servers_message(
    kfp_api, toy_packages, capsys, path
):
    package, _ = toy_packages
    if path.endswith("upload_version"):
        kfp_api.add_pipeline(NAME, package.read_text())
    message = "Failed to create: name is taken by a resource you cannot see"
    kfp_api.fail(1, status=409, message=message, method="POST", path=f"{API}{path}")

    assert upload(kfp_api.url, package) == 1

    err = capsys.readouterr().err
    assert "HTTP 409" in err and message in err


def test_400_fails_at_once_with_the_servers_message_verbatim(kfp_api, toy_packages, capsys):
    package, _ = toy_packages
    message = 'Invalid input error: pipeline spec is invalid: task "echo" has no executor'
    kfp_api.fail(1, status=400, message=message, method="POST", path=f"{API}/pipelines/upload")

    assert upload(kfp_api.url, package) == 1

    err = capsys.readouterr().err
    assert f"HTTP 400 Bad Request: {message}" in err
    assert "retrying" not in err
    assert len(posts(kfp_api, "/pipelines/upload")) == 1


def test_a_plain_text_403_from_istio_is_quoted_with_a_token_hint(kfp_api, toy_packages, capsys):
    package, _ = toy_packages
    kfp_api.fail(1, status=403, raw_body=b"RBAC: access denied")

    assert upload(kfp_api.url, package) == 1

    err = capsys.readouterr().err
    assert "HTTP 403 Forbidden: RBAC: access denied" in err
    assert "--token-path" in err and "pipelines.kubeflow.org" in err


def test_a_login_page_instead_of_the_api_is_named_as_such(kfp_api, toy_packages, capsys):
    package, _ = toy_packages
    # A dashboard or oauth2-proxy answers 200 with HTML; kfp turns that into empty objects.
    kfp_api.fail(10**6, status=200, raw_body=b"<html><body>Sign in</body></html>")

    assert upload(kfp_api.url, package) == 1

    err = capsys.readouterr().err
    assert "did not answer with JSON" in err and "login page" in err


# -- multi-user: token, namespace, headers ---------------------------------------------------


@pytest.fixture
def multi_user_api():
    api = FakeKfpApi(multi_user=True, token=TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def test_multi_user_sends_the_bearer_token_and_namespace_never_kubeflow_userid(
    multi_user_api, toy_packages, token_file, capsys, caplog
):
    package, _ = toy_packages
    extra = ["--namespace", "team-a", "--token-path", str(token_file)]
    assert (
        upload(multi_user_api.url, package, *extra, "--experiment", "nightly", "--run-first") == 0
    )

    requests = multi_user_api.requests
    assert requests and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in requests)
    assert not any("kubeflow-userid" in r.headers for r in requests)
    assert posts(multi_user_api, "/pipelines/upload")[0].param("namespace") == "team-a"
    pipeline_lists = multi_user_api.requests_to("GET", f"{API}/pipelines")
    assert all(
        r.param("namespace") == "team-a" for r in pipeline_lists if r.path == f"{API}/pipelines"
    )
    assert json.loads(posts(multi_user_api, "/experiments")[0].body)["namespace"] == "team-a"
    assert the_pipeline(multi_user_api)["namespace"] == "team-a"
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert TOKEN not in text and "test-token-value" not in text


def test_the_token_path_defaults_to_the_kfp_env_var(
    multi_user_api, toy_packages, token_file, monkeypatch
):
    package, _ = toy_packages
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))

    assert upload(multi_user_api.url, package, "--namespace", "team-a") == 0

    assert posts(multi_user_api, "/pipelines/upload")[0].headers["authorization"] == (
        f"Bearer {TOKEN}"
    )


def test_a_rotated_token_is_read_again(multi_user_api, toy_packages, token_file):
    package, _ = toy_packages

    def rotate(api: FakeKfpApi) -> None:  # the kubelet refreshes the projected token
        token_file.write_text("rotated-token")
        api.token = "rotated-token"

    multi_user_api.fail(1, status=503, side_effect=rotate)

    assert (
        upload(multi_user_api.url, package, "--namespace", "a", "--token-path", str(token_file))
        == 0
    )

    assert multi_user_api.requests[-1].headers["authorization"] == "Bearer rotated-token"


@pytest.mark.parametrize(
    "extra, expected",
    [
        pytest.param(["--token-path", "TOKEN"], "pass --namespace", id="no namespace"),
        pytest.param(["--namespace", "team-a"], "--token-path", id="no token"),
    ],
)
def test_multi_user_without_namespace_or_token_fails_clearly(
    multi_user_api, toy_packages, token_file, capsys, extra, expected
):
    package, _ = toy_packages
    extra = [str(token_file) if arg == "TOKEN" else arg for arg in extra]

    assert upload(multi_user_api.url, package, *extra) == 1

    err = capsys.readouterr().err
    assert "multi-user mode" in err and expected in err
    assert multi_user_api.state.pipelines == {}


def test_a_missing_token_file_fails_before_any_request(kfp_api, toy_packages, tmp_path, capsys):
    package, _ = toy_packages
    missing = tmp_path / "no-such-token"

    assert upload(kfp_api.url, package, "--token-path", str(missing)) == 2  # bad input

    assert f"--token-path names {missing}" in capsys.readouterr().err
    assert kfp_api.requests == []


def test_a_users_kfp_context_file_is_neither_used_nor_written(kfp_api, toy_packages, hermetic_kfp):
    package, _ = toy_packages
    hostile = {
        "namespace": "someone-else",
        "client_authentication_header_name": "kubeflow-userid",
        "client_authentication_header_value": "admin@example.com",
    }
    hermetic_kfp.parent.mkdir(parents=True)
    hermetic_kfp.write_text(json.dumps(hostile))

    assert upload(kfp_api.url, package) == 0

    assert not any("kubeflow-userid" in r.headers for r in kfp_api.requests)
    assert posts(kfp_api, "/pipelines/upload")[0].param("namespace") is None
    assert json.loads(hermetic_kfp.read_text()) == hostile


def test_no_writable_scratch_directory_fails_clearly(
    kfp_api, toy_packages, tmp_path, monkeypatch, capsys
):
    package, _ = toy_packages
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir / "tmp"))
    monkeypatch.setenv("HOME", str(not_a_dir / "home"))

    assert upload(kfp_api.url, package) == 1

    err = capsys.readouterr().err
    assert "No writable directory" in err and "TMPDIR" in err and "HOME" in err


# -- verify-only (helm test) -----------------------------------------------------------------


def test_verify_only_says_ok_when_the_version_exists_and_writes_nothing(
    kfp_api, toy_packages, capsys
):
    package, _ = toy_packages
    assert upload(kfp_api.url, package) == 0
    writes_before = [r for r in kfp_api.requests if r.method != "GET"]
    capsys.readouterr()

    assert upload(kfp_api.url, package, "--verify-only") == 0

    assert [r for r in kfp_api.requests if r.method != "GET"] == writes_before
    assert f"OK: pipeline '{NAME}'" in capsys.readouterr().out


def test_verify_only_names_a_missing_pipeline_and_the_job_log(kfp_api, toy_packages, capsys):
    package, _ = toy_packages

    assert upload(kfp_api.url, package, "--verify-only", "--upload-job", "tao-kfp-upload") == 1

    err = capsys.readouterr().err
    assert f"Pipeline '{NAME}' is missing" in err
    assert "kubectl logs job/tao-kfp-upload" in err
    assert kfp_api.state.pipelines == {}


def test_verify_only_names_a_missing_version_and_the_job_log(kfp_api, toy_packages, capsys):
    installed, changed = toy_packages
    assert upload(kfp_api.url, installed) == 0
    capsys.readouterr()

    assert upload(kfp_api.url, changed, "--verify-only", "--upload-job", "tao-kfp-upload") == 1

    err = capsys.readouterr().err
    assert f"no version '{version_of(changed)}'" in err
    assert "kubectl logs job/tao-kfp-upload" in err


# -- experiment, first run, recurring run ----------------------------------------------------


def _runs(api: FakeKfpApi) -> Tuple[list, list]:
    return list(api.state.runs.values()), list(api.state.recurring_runs.values())


def version_id(api: FakeKfpApi, package: Path) -> str:
    return next(
        v["pipeline_version_id"]
        for v in api.versions_of(the_pipeline(api)["pipeline_id"])
        if v["name"] == version_of(package)
    )


def test_experiment_first_run_and_one_recurring_run_that_follows_the_version(
    kfp_api, toy_packages, capsys
):
    first, second = toy_packages
    extra = [
        "--experiment", "nightly",
        "--run-first",
        "--run-params", '{"message": "hi"}',
        "--recurring-cron", "0 0 * * *",
    ]  # fmt: skip
    assert upload(kfp_api.url, first, *extra) == 0

    [experiment] = kfp_api.state.experiments.values()
    assert experiment["display_name"] == "nightly"
    [run], [recurring] = _runs(kfp_api)
    for created in (run, recurring):
        assert created["experiment_id"] == experiment["experiment_id"]
        assert created["pipeline_version_reference"]["pipeline_version_id"] == version_id(
            kfp_api, first
        )
        assert created["runtime_config"]["parameters"] == {"message": "hi"}
    assert recurring["display_name"] == f"{NAME} schedule"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 0 * * *"  # seconds first
    assert recurring["no_catchup"] is True

    # Unchanged re-run: no second run, the schedule untouched.
    assert upload(kfp_api.url, first, *extra) == 0
    assert [len(items) for items in _runs(kfp_api)] == [1, 1]
    out = capsys.readouterr().out
    assert "Run not started: the version is unchanged" in out
    assert f"Recurring run '{NAME} schedule' unchanged" in out

    # Upgrade: a run of the new version, and the one schedule moves to it.
    assert upload(kfp_api.url, second, *extra) == 0
    runs, [moved] = _runs(kfp_api)
    assert len(runs) == 2 and len(kfp_api.state.experiments) == 1
    assert moved["pipeline_version_reference"]["pipeline_version_id"] == version_id(kfp_api, second)


@pytest.mark.parametrize(
    "extra, expected",
    [
        pytest.param(["--run-params", "[1, 2]"], "must be a JSON object", id="params not object"),
        pytest.param(["--run-params", "{oops"], "not valid JSON", id="params not JSON"),
        pytest.param(["--recurring-cron", "0 0 *"], "has 3 fields", id="short cron"),
        pytest.param(["--host", "ml-pipeline:8888"], "needs a scheme", id="host without scheme"),
        pytest.param(["--version-prefix", " "], "--version-prefix is empty", id="empty prefix"),
    ],
)
def test_bad_flags_fail_before_any_request(kfp_api, toy_packages, capsys, extra, expected):
    package, _ = toy_packages

    assert upload(kfp_api.url, package, *extra) == 2  # bad input: status 2, nothing sent

    assert expected in capsys.readouterr().err
    assert kfp_api.requests == []


def test_a_file_that_is_not_a_compiled_pipeline_is_rejected_by_name(kfp_api, tmp_path, capsys):
    package = tmp_path / "values.yaml"
    package.write_text("image: tao\n")

    assert upload(kfp_api.url, package) == 2  # bad input: status 2, nothing sent

    assert f"--package {package} is not a compiled KFP pipeline" in capsys.readouterr().err


# -- wiring: CLI registry, TLS, environment config -------------------------------------------


def test_the_tao_kfp_cli_runs_upload(kfp_api, toy_packages):
    package, _ = toy_packages
    argv = [
        "upload",
        "--package", str(package),
        "--host", kfp_api.url,
        "--pipeline-name", NAME,
        "--version-prefix", PREFIX,
    ]  # fmt: skip
    assert cli_main(argv) == 0
    assert version_names(kfp_api) == [NAME, version_of(package)]


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory) -> Tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_needs_the_ca_bundle_and_fails_at_once_without_it(self_signed, toy_packages, capsys):
    package, _ = toy_packages
    api = FakeKfpApi(tls=self_signed).start()
    try:
        assert upload(api.url, package) == 1
        err = capsys.readouterr().err
        assert "TLS verification" in err and "--ca-bundle" in err
        assert "retrying" not in err

        assert upload(api.url, package, "--ca-bundle", str(self_signed[0])) == 0
        assert version_names(api) == [NAME, version_of(package)]
    finally:
        api.stop()


def test_the_config_adapts_the_package_and_names_the_version(kfp_api, tmp_path, capsys):
    from tao_kfp.environment import EnvironmentConfig
    from tao_kfp.package import adapt_package, dump_package, load_package
    from tao_kfp.resources import shipped_file

    package = shipped_file("pipelines/tao-classification.yaml")
    config = tmp_path / "env.yaml"  # the TF1 package: its route's tao.version
    config.write_text("workspace:\n  claimName: other-claim\ntao:\n  version: '3'\n")
    env = EnvironmentConfig.from_yaml(config)
    adapted = dump_package(adapt_package(load_package(package), env))

    assert upload(kfp_api.url, package, "--config", str(config)) == 0

    expected = f"{PREFIX}-{hashlib.sha256(adapted.encode()).hexdigest()[:10]}"
    versions = {v["name"]: v for v in kfp_api.versions_of(the_pipeline(kfp_api)["pipeline_id"])}
    assert versions[expected]["package_text"] == adapted
    assert "other-claim" in adapted
