"""NVIDIA's tao-deploy (nvidia-tao-deploy 7.3.0) runs for real up to its first TensorRT call.

tensorrt and pycuda cannot be installed here; tao-env/deploy-stand-ins replaces those two
imports only. The real chain runs: console script -> entrypoint_hydra (argument parsing, GPU-id
check against pycuda's device count) -> script -> Hydra spec validation -> status.json and
experiment.yaml -> model decoding and the QDQ check on the ONNX (onnx) ->
ClassificationEngineBuilder, whose constructor makes the first TensorRT call,
``trt.init_libnvinfer_plugins`` (nvidia_tao_deploy/engine/builder.py:100). That is where it
stops, by the stand-in's error.
"""

from __future__ import annotations

import json

import pytest

from helpers.nvidia_data import tiny_onnx, write_spec
from tao_kfp.routes import pyt

pytestmark = pytest.mark.nvidia

STOP = "TensorRTStandInReached: tensorrt.init_libnvinfer_plugins() called"


@pytest.fixture()
def deploy_spec_file(tmp_path):
    spec = pyt.deploy_spec(
        results_dir=tmp_path / "results",
        onnx_file=tiny_onnx(tmp_path / "model.onnx"),
        engine_file=tmp_path / "results" / "model.engine",
        num_classes=3,
        img_size=32,
    )
    return write_spec(tmp_path / "deploy.yaml", spec)


def test_gen_trt_engine_runs_to_the_first_tensorrt_call(tmp_path, deploy_spec_file, tao_deploy_env):
    process = tao_deploy_env.run(
        pyt.command("gen_trt_engine", deploy_spec_file, deploy=True), tmp_path
    )
    out = process.stdout
    assert process.returncode != 0
    assert STOP in out, out[-3000:]
    # What ran before it: NVIDIA's script read our spec and our ONNX.
    assert "Starting classification_pyt gen_trt_engine." in out
    assert "No QDQ quantization operators found in ONNX model." in out
    status = [
        json.loads(line)
        for line in (tmp_path / "results" / "gen_trt_engine" / "status.json")
        .read_text()
        .splitlines()
    ]
    assert status[0]["status"] == "STARTED"
    resolved = (tmp_path / "results" / "gen_trt_engine" / "experiment.yaml").read_text()
    assert "data_type: fp16" in resolved and "model.engine" in resolved
    assert not (tmp_path / "results" / "model.engine").exists()


def test_a_wrong_spec_key_fails_with_nvidias_error(tmp_path, deploy_spec_file, tao_deploy_env):
    text = deploy_spec_file.read_text().replace("\n  trt_engine:", "\n  trt_engin:")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    process = tao_deploy_env.run(pyt.command("gen_trt_engine", bad, deploy=True), tmp_path)
    assert process.returncode != 0
    assert "Key 'trt_engin' not in 'GenTrtEngineExpConfig'" in process.stdout, process.stdout[
        -3000:
    ]
    assert "TensorRTStandInReached" not in process.stdout


def test_a_wrong_flag_fails_with_nvidias_error(tmp_path, deploy_spec_file, tao_deploy_env):
    # argparse takes the misspelling as an unknown argument; the entrypoint then misses -e
    # (nvidia_tao_deploy cv/common/entrypoint/entrypoint_hydra.py:171-174).
    process = tao_deploy_env.run(
        ["classification_pyt", "gen_trt_engine", "--experiment_spec_fiel", str(deploy_spec_file)],
        tmp_path,
    )
    assert process.returncode != 0
    expected = (
        "ValueError: The subtask `gen_trt_engine` requires the following argument: "
        "-e/--experiment_spec_file"
    )
    assert expected in process.stdout, process.stdout[-3000:]
    assert "TensorRTStandInReached" not in process.stdout
