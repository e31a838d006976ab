"""The TAO 5.x route end to end: the shipped package adapted with tao.version 5, run with kfp.local
on the CPU backend playing TAO 5.x (classification_tf1 + tao-deploy's gen_trt_engine).

The default (3.x) route runs end to end in tests/local_run. Kept small (16x16 digits, 2+1
epochs): what is checked is the route, not the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tao_kfp import local_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tao5_run(tmp_path_factory):
    pytest.importorskip("torch")
    from kfp.local import config

    out = tmp_path_factory.mktemp("tao5")
    summary = local_run.run_local(
        out,
        parameters={"epochs": 2, "retrain_epochs": 1, "batch_size": 32},
        spec_overrides={
            "model_config": {
                **local_run.DEMO_SPEC_OVERRIDES["model_config"],
                "input_image_size": "3,16,16",
            }
        },
        image_size=16,
        tao_version="5",
    )
    config.LocalExecutionConfig.instance = None
    return out, summary


def run_dir(out: Path) -> Path:
    return next((out / "workspace" / "experiments").iterdir())


def test_every_step_succeeds(tao5_run):
    _, summary = tao5_run
    assert summary.status == "SUCCESS", summary.steps
    assert len(summary.steps) == 12


def test_tao5_files_hdf5_checkpoints_onnx_export_and_a_deploy_built_engine(tao5_run):
    out, _ = tao5_run
    run = run_dir(out)
    # Checkpoints kept (last and best by default) are all TAO 5 .hdf5 files.
    assert {p.suffix for p in (run / "train" / "weights").iterdir()} == {".hdf5"}
    assert (run / "prune" / "pruned_model.hdf5").is_file()
    assert (run / "export" / "model_fp32.onnx").is_file()
    assert not list((run / "export_int8").glob("model_int8.*")), "ONNX is exported once"
    engine_log = (run / "tensorrt" / "tao.log").read_text()
    # gen_trt_engine's lines (tao_deploy 5.0 engine_builder.py:279, gen_trt_engine.py:85).
    assert "Calibrating using TensorfileCalibrator" in engine_log
    assert "Export finished successfully." in engine_log
    assert (run / "tensorrt" / "model_int8.engine").is_file()
    assert (run / "tensorrt" / "calibration.bin").is_file()
    assert "wandb_config" not in (run / "tensorrt" / "deploy_spec.cfg").read_text()


def test_ui_outputs_are_those_of_the_3x_route(tao5_run):
    out, summary = tao5_run
    evaluate = summary.metrics["re-evaluate"]
    assert {"top1_accuracy", "top3_accuracy", "loss", "0_precision", "9_f1"} <= set(evaluate)
    assert {"engine_size_mb", "calibration_cache_mb"} <= set(summary.metrics["convert-tensorrt"])
    run_json = json.loads((run_dir(out) / "run.json").read_text())
    assert run_json["parameters"]["num_gpus"] == "1"
