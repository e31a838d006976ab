"""The commands the chart's Jobs and test pods run are accepted by the real `tao-kfp` CLI, and the
init Job's two steps do their work when replayed on a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from chart_helpers import SCENARIOS, pod_specs

from tao_kfp.cli import build_parser, main


def containers(docs):
    for name, _metadata, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield name, container


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_chart_command_parses(renderer, helm4, scenario):
    parser = build_parser()
    for name, container in containers(renderer.docs(helm4, scenario)):
        try:
            parser.parse_args(container["args"])
        except SystemExit:
            pytest.fail(f"{name}/{container['name']}: tao-kfp rejects {container['args']}")


def replay(args, mounts: dict) -> list:
    """Rewrites in-pod paths to local ones."""
    out = []
    for arg in args:
        for pod_path, local in mounts.items():
            arg = arg.replace(pod_path, str(local))
        out.append(arg)
    return out


def test_init_job_lays_out_the_workspace_and_writes_the_spec(renderer, helm4, tmp_path, capsys):
    docs = renderer.docs(helm4, "02-nfs-values")
    config = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-specs")
    )
    specs_dir = tmp_path / "etc-specs"
    specs_dir.mkdir()
    for key, text in config["data"].items():
        (specs_dir / key).write_text(text)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    mounts = {"/etc/tao-kfp/specs": specs_dir, "/workspace": workspace}
    steps = {
        c["name"]: c["args"] for name, c in containers(docs) if name.endswith("workspace-init")
    }
    assert main(replay(steps["layout"], mounts)) == 0
    assert main(replay(steps["spec"], mounts)) == 0
    spec = (workspace / "specs/classification_spec.cfg").read_text()
    assert "n_epochs: 10" in spec and "batch_size_per_gpu: 32" in spec
    # A user edit survives the next install/upgrade (no specs.force).
    edited = spec.replace("n_epochs: 10", "n_epochs: 3")
    (workspace / "specs/classification_spec.cfg").write_text(edited)
    assert main(replay(steps["layout"], mounts)) == 0
    main(replay(steps["spec"], mounts))
    assert (workspace / "specs/classification_spec.cfg").read_text() == edited
    assert main(["workspace", "check", "--root", str(workspace), "--allow-unmounted"]) == 0
    assert Path(workspace / "experiments").is_dir()
