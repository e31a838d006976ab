"""The compiled, adapted package runs end to end under kfp.local (fake TAO, no cluster).

This is the path the local demo takes: adapt the shipped package with a local workspace and
TAO_ENTRYPOINT, load it as a component, run it with SubprocessRunner. kfp-kubernetes
settings are ignored locally; container env vars are applied.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tao_kfp import compiler
from tao_kfp.environment import EnvironmentConfig, adapt_package, dump_package, load_package

FAKE_TAO = Path(__file__).with_name("fake_tao.py")


def test_pipeline_runs_locally(workspace, fake_tao, tmp_path, monkeypatch):
    from kfp import components, local

    command = f"{sys.executable} {FAKE_TAO}"
    env = EnvironmentConfig.model_validate(
        {
            "workspace": {"mountPath": str(workspace)},
            "tao": {"entrypoint": command, "converter": command},
        }
    )
    package = tmp_path / "local.yaml"
    package.write_text(dump_package(adapt_package(load_package(compiler.DEFAULT_OUTPUT), env)))
    pipeline = components.load_component_from_file(str(package))
    monkeypatch.chdir(tmp_path)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "pipeline-root"),
        raise_on_error=True,
    )
    task = pipeline(
        dataset_path="datasets/tiny",
        pretrained_model="",
        epochs=2,
        retrain_epochs=1,
        batch_size=4,
    )
    model = task.output
    assert Path(model.path).is_file()
    assert model.metadata["arch"] == "resnet"
    runs = list((workspace / "experiments").iterdir())
    assert len(runs) == 1  # the job id placeholder resolved to one run directory
    run_dir = runs[0]
    assert model.metadata["workspace_path"] == str(
        run_dir / "retrain" / "weights" / "resnet_001.tlt"
    )
    assert (run_dir / "tensorrt" / "model_int8.engine").is_file()
    subcommands = [call[0] for call in fake_tao.calls()]
    for expected in ("train", "evaluate", "prune", "inference", "calibration_tensorfile"):
        assert expected in subcommands
    assert subcommands.count("export") == 2


@pytest.fixture(autouse=True)
def _reset_kfp_local():
    yield
    from kfp.local import config

    config.LocalExecutionConfig.instance = None
