"""The whole pipeline on the real CPU backend (slow: trains a tiny network twice)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tao_kfp import compiler
from tao_kfp.environment import EnvironmentConfig, adapt_package, dump_package, load_package

pytestmark = pytest.mark.slow

# Small enough for seconds per step on 2 cores.
OVERRIDES = {
    "model_config": {"n_layers": 10, "input_image_size": "3,32,32", "freeze_blocks": []},
    "train_config": {
        "n_workers": 1,
        "mixup_alpha": 0.0,
        "enable_random_crop": False,
        "enable_center_crop": False,
        "preprocess_mode": "torch",
    },
    "eval_config": {"n_workers": 1, "batch_size": 8},
}


@pytest.fixture(autouse=True)
def _reset_kfp_local():
    yield
    from kfp.local import config

    config.LocalExecutionConfig.instance = None


def test_pipeline_runs_on_the_cpu_backend(tmp_path, class_folders, monkeypatch):
    pytest.importorskip("torch")
    from kfp import components, local

    workspace = tmp_path / "workspace"
    class_folders(workspace / "datasets" / "tiny", counts=(8, 2, 2))
    backend = f"{shlex.quote(sys.executable)} -m tao_kfp.cpu_backend"
    env = EnvironmentConfig.model_validate(
        {
            "workspace": {"mountPath": str(workspace)},
            "tao": {"entrypoint": backend, "converter": f"{backend} converter"},
        }
    )
    package = tmp_path / "local.yaml"
    package.write_text(dump_package(adapt_package(load_package(compiler.DEFAULT_OUTPUT), env)))
    monkeypatch.chdir(tmp_path)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    pipeline = components.load_component_from_file(str(package))
    model = pipeline(
        dataset_path="datasets/tiny",
        epochs=1,
        retrain_epochs=1,
        batch_size=4,
        prune_threshold=0.3,
        spec_overrides=json.dumps(OVERRIDES),
    ).output
    assert Path(model.metadata["workspace_path"]).is_file()
    (run_dir,) = (workspace / "experiments").iterdir()
    assert (run_dir / "inference" / "images" / "result.csv").is_file()
    assert list((run_dir / "tensorrt").glob("*.engine"))
