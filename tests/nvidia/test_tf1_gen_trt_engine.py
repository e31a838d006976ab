"""Step 12 of the TAO 5 route (``classification_tf1 gen_trt_engine``) run by NVIDIA's own code.

Our step (``steps.export.run_build_engine`` with ``TAO_VERSION=5``) builds the argv and the
deploy spec and starts the command through ``tao.run_tao``, exactly as in a pipeline pod; the
command is nvidia-tao-deploy 7.3.0's ``classification_tf1`` console script. The real chain
runs: ``entrypoint_proto.launch_job`` (argparse of every script, GPU-id check, the
``bash -c`` re-split) -> ``classification_tf1/scripts/gen_trt_engine.py`` (its own argparse)
-> ``monitor_status`` (status.json) -> ``decode_model`` -> ``load_proto`` (the spec, with
NVIDIA's ``classification_tf1/proto``) -> ``ClassificationEngineBuilder`` -> ``EngineBuilder``,
whose constructor makes the first TensorRT call, ``trt.init_libnvinfer_plugins``
(``engine/builder.py:100``). There it stops, by the stand-in's error; the stand-in reports
what NVIDIA's frames held at that moment (tao-env/deploy-stand-ins/tensorrt), and the tests
assert on it. Calibration (the TensorFile) is read only after that call, so the TensorFile
here is an empty file. docs/tao-deploy-tf1.md gives the lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.datasets import make_class_folders
from helpers.nvidia_data import tiny_onnx
from helpers.step_params import run_params
from tao_kfp import spec as spec_module
from tao_kfp.steps import common, export
from tao_kfp.steps.validate import validate_inputs
from tao_kfp.tao import TaoCommandError

pytestmark = pytest.mark.nvidia

STOP = "tensorrt.TensorRTStandInReached: tensorrt.init_libnvinfer_plugins() called"


@pytest.fixture()
def step12(tmp_path, monkeypatch, tao_deploy_env):
    """Steps 1, 10 and 11's outputs on disk, and the environment of a TAO 5 step-12 pod."""
    make_class_folders(tmp_path / "datasets" / "tiny")
    plan = validate_inputs(**run_params(tmp_path, run_id="job-1", tao_version="5", base_spec=""))
    # The retrain spec carries fields the deploy proto lacks: the step must drop them.
    common.write_spec_with(
        plan.retrain_spec,
        {
            "train_config.visualizer.enabled": True,
            "train_config.visualizer.wandb_config.project": "p",
        },
        plan.retrain_spec,
    )
    fp32 = tiny_onnx(common.run_subdir(plan.run_dir, "export") / "model_fp32.onnx", "input_1")
    tensorfile = common.run_subdir(plan.run_dir, "export_int8") / "calibration.tensor"
    tensorfile.write_bytes(b"")  # read only after the first TensorRT call
    export.write_calibration_record(tensorfile, *export.calibration_batches(plan.retrain_spec))
    for key, value in tao_deploy_env.environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TAO_VERSION", "5")
    # The chart's default tao.deployEntrypoint, and tao.DEFAULT_COMMANDS' too.
    monkeypatch.delenv("TAO_DEPLOY_ENTRYPOINT", raising=False)
    monkeypatch.delenv("TAO_KFP_SYSTEM_PATH", raising=False)
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    report = tmp_path / "stand-in-report.json"
    monkeypatch.setenv("TAO_KFP_STAND_IN_REPORT", str(report))
    return {
        "plan": plan,
        "fp32": str(fp32),
        "tensorfile": str(tensorfile),
        "results": common.run_subdir(plan.run_dir, "tensorrt"),
        "report": report,
    }


def run_step12(step12):
    return export.run_build_engine(
        int8_model="",
        cal_cache="",
        fp32_model=step12["fp32"],
        cal_data_file=step12["tensorfile"],
        spec_path=step12["plan"].retrain_spec,
        results_dir=str(step12["results"]),
    )


def frame(report, file, function):
    """The one frame of ``function`` in ``file`` (inside the wheel) in the stand-in's report."""
    (found,) = [f for f in report["frames"] if (f["file"], f["function"]) == (file, function)]
    return found


def test_our_step12_argv_and_spec_pass_nvidias_parsers_up_to_tensorrt(step12):
    with pytest.raises(TaoCommandError) as failure:
        run_step12(step12)
    results = step12["results"]
    log = (results / "tao.log").read_text()
    assert STOP in log, log[-3000:]
    assert "Starting classification_tf1 gen_trt_engine." in log
    assert log.rstrip().endswith("Execution status: FAIL")
    assert "exit code 1" in str(failure.value)
    # monitor_status wrote its first line from -r; the failure is not one it catches.
    statuses = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert [s["status"] for s in statuses] == ["STARTED"]
    assert not (results / export.ENGINE_NAME).exists()
    assert not (results / "calibration.bin").exists()

    report = json.loads(step12["report"].read_text())
    assert report["call"] == "tensorrt.init_libnvinfer_plugins"
    innermost = report["frames"][0]
    assert (innermost["file"], innermost["line"]) == ("nvidia_tao_deploy/engine/builder.py", 100)

    # What the script's own argparse made of our argv after the launcher's re-split.
    script = frame(
        report, "nvidia_tao_deploy/cv/classification_tf1/scripts/gen_trt_engine.py", "main"
    )
    assert script["line"] == 53  # ClassificationEngineBuilder(...)
    got = script["locals"]["args"]
    assert got == {
        "model_path": step12["fp32"],
        "key": None,
        "experiment_spec": str(results / "deploy_spec.cfg"),
        "data_type": "int8",
        "cal_image_dir": "",
        "cal_data_file": step12["tensorfile"],
        "cal_cache_file": str(results / "calibration.bin"),
        "engine_file": str(results / export.ENGINE_NAME),
        "max_batch_size": 4,
        "min_batch_size": 1,
        "opt_batch_size": 1,
        "batch_size": 4,
        "batches": 4,
        "max_workspace_size": 2,
        "strict_type_constraints": False,
        "verbose": False,
        "results_dir": str(results),
    }
    # --batches and --batch_size are step 11's record (18 train images // batch size 4).
    assert (got["batches"], got["batch_size"]) == export.read_calibration_record(
        step12["tensorfile"]
    )
    assert script["locals"]["file_format"] == "onnx"
    assert script["locals"]["output_engine_path"] == got["engine_file"]
    # No image_mean in our spec: NVIDIA's BGR default (gen_trt_engine.py:36-43).
    assert script["locals"]["image_mean"] == [103.939, 116.779, 123.68]
    # NVIDIA's proto read the deploy spec to the very message we wrote (no field lost).
    nvidia_spec = spec_module.parse_spec(script["locals"]["es"], source="NVIDIA's parse")
    ours = spec_module.load_spec(got["experiment_spec"])
    assert nvidia_spec == ours
    assert ours.train_config.visualizer.enabled and not ours.train_config.visualizer.HasField(
        "wandb_config"
    )

    builder = frame(report, "nvidia_tao_deploy/engine/builder.py", "__init__")["locals"]
    assert (builder["max_batch_size"], builder["workspace"]) == (4, 2)


def test_a_wrong_flag_fails_with_nvidias_argparse_error(step12, tao_deploy_env):
    argv = step12_argv(step12)
    typo = ["--cal_cache_flie" if word == "--cal_cache_file" else word for word in argv]
    process = tao_deploy_env.run(["classification_tf1", *typo], step12["results"])
    assert process.returncode == 2, process.stdout[-3000:]
    # The launcher's parser (entrypoint_proto.py:83-110) takes the unknown flag's value for a
    # second task name.
    expected = (
        "classification_tf1 gen_trt_engine: error: argument {evaluate,gen_trt_engine,inference}: "
        f"invalid choice: '{step12['results'] / 'calibration.bin'}'"
    )
    assert expected in process.stdout, process.stdout[-3000:]
    assert "TensorRTStandInReached" not in process.stdout


def test_a_wrong_spec_field_fails_with_nvidias_proto_error(step12, tao_deploy_env):
    argv = step12_argv(step12)
    spec_file = Path(argv[argv.index("-e") + 1])
    text = spec_file.read_text()
    line = text.splitlines().index("  batch_size_per_gpu: 4") + 1
    spec_file.write_text(text.replace("batch_size_per_gpu", "batch_size_per_gpus"))
    process = tao_deploy_env.run(["classification_tf1", *argv], step12["results"])
    assert process.returncode == 1
    expected = (
        f"google.protobuf.text_format.ParseError: {line}:3 : "
        'Message type "TrainConfig" has no field named "batch_size_per_gpus".'
    )
    assert expected in process.stdout, process.stdout[-3000:]
    assert process.stdout.rstrip().endswith("Execution status: FAIL")
    assert "TensorRTStandInReached" not in process.stdout


def step12_argv(step12):
    """The argv run_build_engine passes (also writes the deploy spec), without running it."""
    return export.gen_trt_engine_args(
        onnx_model=step12["fp32"],
        spec_path=step12["plan"].retrain_spec,
        results=step12["results"],
        cal_data_file=step12["tensorfile"],
    )


# Walks a spec message type into {dotted field path: kind}; run in both Pythons.
_SCHEMA = """
import json, sys, importlib
def walk(desc, prefix=""):
    out = {}
    for f in desc.fields:
        path = prefix + f.name
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            out[path] = "map"
        elif f.message_type is not None:
            out[path] = "message"
            out.update(walk(f.message_type, path + "."))
        else:
            repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == 3
            out[path] = ("repeated " if repeated else "") + str(f.cpp_type)
    return out
module, name = sys.argv[1:]
print(json.dumps(walk(getattr(importlib.import_module(module), name).DESCRIPTOR)))
"""


def test_our_spec_table_is_nvidias_deploy_proto_plus_the_fields_we_drop(tmp_path, tao_deploy_env):
    """spec.DEPLOY_ABSENT_FIELDS is exactly what nvidia-tao-deploy 7.3.0's proto lacks."""
    nvidia = tao_deploy_env.run(
        [
            "python",
            "-c",
            _SCHEMA,
            "nvidia_tao_deploy.cv.classification_tf1.proto.experiment_pb2",
            "Experiment",
        ],  # fmt: skip
        tmp_path,
    )
    assert nvidia.returncode == 0, nvidia.stdout[-3000:]
    theirs = json.loads(nvidia.stdout.strip().splitlines()[-1])
    ours = json.loads(
        subprocess.run(
            [sys.executable, "-c", _SCHEMA, "tao_kfp.spec", "ExperimentSpec"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    dropped = {
        path
        for path in ours
        if any(path == f or path.startswith(f + ".") for f in spec_module.DEPLOY_ABSENT_FIELDS)
    }
    assert set(theirs) == set(ours) - dropped
    assert {path: ours[path] for path in theirs} == theirs
