"""TAO's launchers re-split every argument: what reaches a TAO command must survive that.

The rule (tao.launcher_safe) is checked against the launchers' real mechanism: the string
`bash -c '... --flag <value>'` is split with the real shlex.split and run by the real bash
(NVIDIA/tao_deploy 6.25.11 nvidia_tao_deploy/cv/common/entrypoint/entrypoint_proto.py:229-244;
NVIDIA/tao_tensorflow1_backend 5.0 nvidia_tao_tf1/cv/common/entrypoint/entrypoint.py:341-369).
The case list is shared with the chart (tests/cases/launcher_safe.yaml).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers.step_params import run_params
from tao_kfp.steps.validate import InputError, validate_inputs
from tao_kfp.tao import LAUNCHER_SAFE_PATTERN, MODEL_KEY_ENV, launcher_safe

CASES = yaml.safe_load((Path(__file__).parents[1] / "cases" / "launcher_safe.yaml").read_text())


def through_the_launcher(value: str) -> list[str] | None:
    """The argv a TAO script gets for `--key <value>`, or None when the launch fails.

    The launcher's own steps, with a harmless script: `printf` prints the words bash passes.
    """
    run_command = f"bash -c 'TF_ENABLE_AUTO_MIXED_PRECISION=0 printf \"%s\\0\" --key {value} '"
    try:
        words = shlex.split(run_command)
    except ValueError:  # "No closing quotation": the launcher dies before running anything
        return None
    result = subprocess.run(words, capture_output=True, timeout=10, cwd="/", env={})
    if result.returncode != 0:
        return None
    return result.stdout.decode(errors="replace").split("\0")[:-1]


@pytest.mark.parametrize("value", CASES["accepted"])
def test_accepted_values_reach_the_script_unchanged(value):
    assert launcher_safe(value)
    assert through_the_launcher(value) == ["--key", value]


@pytest.mark.parametrize("value", CASES["refused"])
def test_refused_values_do_not_survive_the_launcher(value):
    assert not launcher_safe(value)
    if value == "":
        return  # dropped by the launcher: `if value in [None, ""]: continue`
    if any(c in value for c in "*?"):
        # Globs survive only while nothing matches; the rule refuses what may change.
        return
    assert through_the_launcher(value) != ["--key", value]


def test_the_pattern_is_what_shlex_quote_leaves_alone():
    # shlex._find_unsafe: r'[^\w@%+=:,./-]' with re.ASCII; the chart uses the same pattern.
    for value in CASES["accepted"] + CASES["refused"]:
        assert bool(re.fullmatch(LAUNCHER_SAFE_PATTERN, value)) == (
            value != "" and shlex.quote(value) == value
        )


def problems(workspace, **changes) -> str:
    with pytest.raises(InputError) as error:
        validate_inputs(**run_params(workspace, **changes))
    return str(error.value)


def test_step_1_refuses_a_workspace_path_the_launcher_cannot_carry(tmp_path, class_folders):
    workspace = tmp_path / "my workspace"
    class_folders(workspace / "datasets" / "tiny")
    message = problems(workspace, tao_version="5")
    assert "the workspace path" in message and "bash -c" in message
    assert "workspace.mountPath" in message


@pytest.mark.parametrize("run_id", ["run 1", "it's"])
def test_step_1_refuses_a_run_id_the_launcher_cannot_carry(workspace, run_id):
    assert f"the run id {run_id!r}" in problems(workspace, run_id=run_id)


@pytest.mark.parametrize("key", ["my key", "it's", 'a"b'])
def test_step_1_refuses_a_model_key_the_launcher_cannot_carry(workspace, monkeypatch, key):
    monkeypatch.setenv(MODEL_KEY_ENV, key)
    message = problems(workspace)
    assert "the model key (TAO -k)" in message and "secrets.modelKey" in message
    assert key not in message, "the key itself is never printed"


def test_a_dataset_folder_with_a_space_is_fine(tmp_path, class_folders):
    """The dataset path reaches TAO only inside spec files, never as an argument."""
    class_folders(tmp_path / "data" / "my set")
    plan = validate_inputs(**run_params(tmp_path, dataset_path="data/my set", tao_version="5"))
    assert plan.dataset_dir.endswith("data/my set")
