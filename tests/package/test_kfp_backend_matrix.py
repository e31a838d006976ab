"""hack/kfp-backends: the matrix says where KFP's code came from, and the controls invert it.

make kfp-backends runs KFP's own backend code (docs/kfp-backend-harness.md); these tests feed
matrix.py result files of the shape harness_test.go and run-version.sh write, and check that a
run from a local source tree (KFP_BACKENDS_SRC) is never shown as proven in CI, that versions
the module proxy does not serve stay n/a and keep the README as it is, and that a negative
control (--expect-fail) passes only when the column really failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "hack" / "kfp-backends"
COLUMNS = ("upload parse", "run creation", "driver pod spec", "upstream lookups")
README = "intro\n<!-- kfp-backends:begin -->\nold table\n<!-- kfp-backends:end -->\noutro\n"


def write_result(out: Path, version: str, source: str, failing: str = "", lost: str = "") -> None:
    vdir = out / version
    (vdir / "packages").mkdir(parents=True)
    (vdir / "packages" / "tao-classification.yaml").write_text("{}\n")
    (vdir / "packages" / "tao-classification.render.log").write_text(
        f"KFP {version}: {lost}\n" if lost else ""
    )
    columns = {
        c: {"pass": c != failing, **({"errors": ["boom"]} if c == failing else {})} for c in COLUMNS
    }
    result = {"version": version, "source": source}
    result["packages"] = {"tao-classification": {"columns": columns, "tasks": {}}}
    (vdir / "result.json").write_text(json.dumps(result))


def write_unavailable(out: Path, version: str) -> None:
    vdir = out / version
    (vdir / "packages").mkdir(parents=True)
    (vdir / "packages" / "tao-classification.yaml").write_text("{}\n")
    (vdir / "packages" / "tao-classification.render.log").write_text("")
    reason = "403 Forbidden\n\tserver response: This module version is not available."
    (vdir / "result.json").write_text(json.dumps({"version": version, "unavailable": reason}))


def matrix(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HERE / "matrix.py"), *args], capture_output=True, text=True
    )


def rows(stdout: str) -> dict:
    return {line.split(" | ")[0][2:]: line for line in stdout.splitlines() if line[:4] == "| 2."}


def test_rows_say_whether_kfp_came_from_the_proxy_or_a_local_tree(tmp_path):
    write_result(tmp_path, "2.0.5", "proxy")
    write_result(tmp_path, "2.5.0", "local source tree at commit d07cf1c7f9bd16 (tag 2.5.0)")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    done = matrix(str(tmp_path), "2.0.5", "2.5.0", "--readme", str(readme))
    assert done.returncode == 0, done.stdout + done.stderr
    by_version = rows(done.stdout)
    assert "| Go module proxy (CI) |" in by_version["2.0.5"]
    assert "| tag source tree at d07cf1c7f9bd (local, not CI) |" in by_version["2.5.0"]
    assert "CI proves only the rows from the Go module proxy; 2.5.0 ran" in readme.read_text()


def test_a_version_the_proxy_does_not_serve_is_na_and_keeps_the_readme(tmp_path):
    write_result(tmp_path, "2.0.5", "proxy")
    write_unavailable(tmp_path, "2.17.0")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    done = matrix(str(tmp_path), "2.0.5", "2.17.0", "--readme", str(readme))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| n/a | n/a | n/a | n/a |" in rows(done.stdout)["2.17.0"]
    assert "This module version is not available." in done.stdout
    assert readme.read_text() == README


def test_a_failed_cell_fails_the_matrix(tmp_path):
    write_result(tmp_path, "2.5.0", "proxy", failing="upstream lookups")
    done = matrix(str(tmp_path), "2.5.0")
    assert done.returncode == 1
    assert "| pass | pass | pass | FAIL |" in rows(done.stdout)["2.5.0"]


@pytest.mark.parametrize(
    ("failing", "code", "verdict"),
    [
        ("run creation", 0, "control holds: run creation = FAIL"),
        ("", 1, "control DOES NOT HOLD: run creation = pass"),
        ("driver pod spec", 1, "control DOES NOT HOLD: run creation = pass"),
    ],
)
def test_a_negative_control_passes_only_when_its_column_failed(tmp_path, failing, code, verdict):
    write_result(tmp_path, "2.14.4", "proxy", failing=failing)
    done = matrix(str(tmp_path), "2.14.4", "--expect-fail", "run creation")
    assert done.returncode == code, done.stdout
    assert verdict in done.stdout


def test_a_control_on_a_version_that_could_not_run_says_so(tmp_path):
    write_unavailable(tmp_path, "2.14.4")
    done = matrix(str(tmp_path), "2.14.4", "--expect-fail", "run creation")
    assert done.returncode == 0
    assert "control not run here (n/a): run creation = n/a" in done.stdout


def test_export_refuses_a_tag_that_is_not_the_pinned_commit(tmp_path):
    """export-src.sh checks each tag against the commit its go.mod pseudo-version pins."""
    repo = tmp_path / "repo"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for command in (
        ["git", "init", "-q", str(repo)],
        ["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "not KFP"],
        ["git", "-C", str(repo), "tag", "2.5.0"],
    ):
        subprocess.run(command, check=True, env=env)
    done = subprocess.run(
        [str(HERE / "export-src.sh"), str(repo / ".git"), str(tmp_path / "src"), "2.5.0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "go.mod pins v0.0.0-20250428191346-d07cf1c7f9bd" in done.stderr
    assert not (tmp_path / "src" / "2.5.0").exists()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_a_local_tree_at_another_commit_is_never_used(tmp_path):
    """run-version.sh takes KFP_BACKENDS_SRC/<version> only if SOURCE names the pinned commit."""
    pin = "github.com/kubeflow/pipelines@v0.0.0-20260709152847-4a3592cb2dd0"  # 2.17.0
    asked = subprocess.run(
        ["go", "mod", "download", "-json", pin], capture_output=True, text=True, timeout=120
    )
    if asked.returncode == 0:
        pytest.skip("the module proxy serves 2.17.0's commit now: local trees are not consulted")
    tree = tmp_path / "src" / "2.17.0"
    tree.mkdir(parents=True)
    (tree / "SOURCE").write_text("tag 2.17.0\ncommit " + "0" * 40 + "\n")
    done = subprocess.run(
        [str(HERE / "run-version.sh"), "2.17.0", str(tmp_path / "packages"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "KFP_BACKENDS_SRC": str(tmp_path / "src")},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "SOURCE is commit 0000000000000000000000000000000000000000" in done.stderr
    assert "go.mod pins v0.0.0-20260709152847-4a3592cb2dd0" in done.stderr
    assert not (tmp_path / "out" / "result.json").exists()
