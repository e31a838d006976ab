"""`tao-kfp lint-values`: duplicate keys, the chart's install checks and tao-kfp's rules."""

from __future__ import annotations

from pathlib import Path

from chart_helpers import CI_DIR, REPO

from tao_kfp.cli import main
from tao_kfp.lint_values import duplicate_keys, release_namespace

DEFAULTS = CI_DIR / "01-default-values.yaml"


def test_duplicate_keys_are_found_at_every_depth():
    text = "ngc:\n  apiKey: a\nupload:\n  experiment: x\n  experiment: y\nngc:\n  modelKey: k\n"
    assert duplicate_keys(text) == [(5, "upload.experiment", 4), (6, "ngc", 1)]
    assert duplicate_keys("a: 1\nb:\n  - c: 1\n    c: 2\n") == [(4, "b[0].c", 3)]
    assert duplicate_keys("a: 1\nb: 2\n") == []


def test_a_duplicated_block_fails_with_file_line_and_key(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text("ngc:\n  apiKey: abc\ngpu:\n  count: 1\nngc:\n  modelKey: nvidia_tlt\n")
    assert main(["lint-values", "--helm", str(tmp_path / "no-helm"), str(values)]) == 1
    out = capsys.readouterr().out
    assert f"{values}:5: key 'ngc' appears again (first at line 1)" in out
    assert "note: helm not found" in out


def test_valid_values_pass_with_helm(helm4):
    assert main(["lint-values", "--chart", str(REPO), "--helm", helm4.path, str(DEFAULTS)]) == 0


def test_the_chart_checks_and_the_python_rules_both_report(helm4, capsys):
    bad = REPO / "tests/chart/bad-values/cron-weekday-7.yaml"
    args = ["lint-values", "--chart", str(REPO), "--helm", helm4.path, str(DEFAULTS), str(bad)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "error: tao-kfp rules: upload.recurringCron '0 3 * * 7'" in out
    assert 'error: helm template (namespace kubeflow): upload.recurringCron "0 3 * * 7"' in out


def test_a_cron_that_never_fires_is_a_warning(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text(
        "upload:\n  experiment: e\n  recurringCron: 0 0 31 2 *\n  runParams:\n    dataset_path: d\n"
    )
    args = ["lint-values", "--helm", str(tmp_path / "no-helm"), str(DEFAULTS), str(values)]
    assert main(args) == 0
    assert "warning: upload.recurringCron '0 0 31 2 *' names a day" in capsys.readouterr().out


def test_credentials_are_refused_without_being_printed(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text("workspace:\n  init:\n    datasetUrl: https://u:s3cr3tPW@h.example/d.tgz\n")
    args = ["lint-values", "--helm", str(tmp_path / "no-helm"), str(DEFAULTS), str(values)]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "workspace.init.datasetUrl carries a user name or password" in out
    assert "s3cr3tPW" not in out


def test_the_release_namespace_follows_the_values():
    assert release_namespace({"kfp": {"host": "http://ml-pipeline.kubeflow:8888"}}) == "kubeflow"
    assert release_namespace({"kfp": {"mode": "multiUser", "namespace": "team-a"}}) == "team-a"
    assert release_namespace({"kfp": {"pipelineNamespace": "ml", "host": "http://x.y"}}) == "ml"
    assert release_namespace({"kfp": {"host": "https://kfp.example.com/pipeline"}}) == "default"
    assert Path(DEFAULTS).is_file()
