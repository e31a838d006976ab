"""The PyTorch route's step 1 and spec writer (routes.pyt, pyt_steps), without NVIDIA's code.

tests/nvidia runs the same specs through NVIDIA's own ExperimentConfig and actions.
"""

from __future__ import annotations

import sys

import pytest
import yaml

from helpers.pyt_runs import step_one_params
from tao_kfp.routes import pyt, pyt_steps
from tao_kfp.steps.validate import InputError

params = step_one_params


@pytest.fixture(autouse=True)
def no_nvidia_here(monkeypatch):
    """The unit tests check our rules; NVIDIA's config is checked in tests/nvidia."""
    for name in pyt.NVIDIA_PYTHON_ENV.values():
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("compression", pyt.COMPRESSIONS)
def test_step_one_writes_every_spec_of_the_run(workspace, compression):
    plan = pyt_steps.validate_inputs(workspace=str(workspace), **params(compression=compression))
    specs = {
        p.stem: yaml.safe_load(p.read_text())
        for p in (workspace / "experiments" / "run-1" / "specs").iterdir()
    }
    assert set(specs) == set(pyt.STEP_SPECS)
    run = workspace / "experiments" / "run-1"
    assert plan.run_dir == str(run)
    for step, spec in specs.items():
        assert spec["results_dir"] == str(run / step), step  # one folder per step
    train = specs["train"]
    assert train["dataset"]["num_classes"] == 3
    assert train["train"]["num_epochs"] == 2 and specs["compress"]["train"]["num_epochs"] == 1
    assert train["wandb"] == {"enable": False}
    trained = str(run / "train" / "train" / "classifier_model_latest.pth")
    assert specs["evaluate"]["evaluate"]["checkpoint"] == trained
    # NVIDIA's evaluate reads val_dataset: the evaluations point it at the test split
    test_split = str(workspace / "datasets" / "tiny" / "test")
    for step in ("evaluate", "evaluate_compressed"):
        assert specs[step]["dataset"]["val_dataset"]["images_dir"] == test_split, step
    assert train["dataset"]["val_dataset"]["images_dir"].endswith("/val")
    if compression == "distill":
        assert specs["compress"]["distill"]["pretrained_teacher_model_path"] == trained
        assert specs["compress"]["distill"]["teacher"] == train["model"]
        assert specs["evaluate_compressed"]["evaluate"]["is_quantized"] is False
    else:
        assert specs["compress"]["quantize"]["model_path"] == trained
        assert specs["evaluate_compressed"]["evaluate"]["is_quantized"] is True
        # a torchao-quantized export carries no int8 data: the trained model is exported
        assert specs["export"]["export"]["checkpoint"] == trained
    engine = specs["gen_trt_engine"]["gen_trt_engine"]
    assert engine["onnx_file"] == specs["export"]["export"]["onnx_file"]
    assert engine["tensorrt"]["data_type"] == "fp16"
    assert specs["evaluate_engine"]["evaluate"]["trt_engine"] == engine["trt_engine"]


def test_spec_overrides_reach_every_training_spec_not_the_deploy_ones(workspace):
    overrides = '{"dataset": {"img_size": 64}, "model": {"head": {"topk": [1, 2]}}}'
    pyt_steps.validate_inputs(workspace=str(workspace), **params(spec_overrides=overrides))
    specs_dir = workspace / "experiments" / "run-1" / "specs"
    for step, deploy in pyt.STEP_SPECS.items():
        spec = yaml.safe_load((specs_dir / f"{step}.yaml").read_text())
        assert spec["dataset"]["img_size"] == 64, step
        if not deploy:
            assert spec["model"]["head"]["topk"] == [1, 2], step
    export = yaml.safe_load((specs_dir / "export.yaml").read_text())["export"]
    assert (export["input_width"], export["input_height"]) == (64, 64)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"compression": "prune"}, "compression must be one of distill, quantize"),
        ({"engine_precision": "int8"}, "engine_precision int8 needs a QDQ ONNX"),
        ({"compress_epochs": 0}, "compress_epochs must be >= 1"),
        ({"num_gpus": "two"}, "num_gpus must be a whole number"),
        ({"tao_version": "5"}, "tao.version is 5"),
        ({"spec_overrides": "{train: {num_epochs: 5}}"}, "spec_overrides sets train.num_epochs"),
        ({"spec_overrides": "{results_dir: /x}"}, "spec_overrides sets results_dir"),
        ({"pretrained_model": "models/b.hdf5"}, "pretrained_model"),
        ({"dataset_path": "nowhere"}, "does not exist"),
        ({"compression": "distill", "student_backbone": " "}, "student_backbone is empty"),
    ],
)
def test_step_one_refuses_bad_inputs_naming_the_parameter(workspace, changes, expected):
    with pytest.raises(InputError, match=expected):
        pyt_steps.validate_inputs(workspace=str(workspace), **params(**changes))


def test_step_one_reports_nvidias_refusal_naming_the_step_and_key(workspace, monkeypatch, tmp_path):
    """The report format, with a stand-in checker that refuses one key as NVIDIA's does."""
    checker = tmp_path / "checker"
    # Called as NVIDIA's Python: <python> -c <script> <spec files>; refuses the first file.
    checker.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "print(json.dumps({'path': sys.argv[3], 'key': 'train.num_epoch',\n"
        "                  'error': \"Key 'num_epoch' not in 'TrainExpConfig'\"}))\n"
    )
    checker.chmod(0o755)
    monkeypatch.setenv(pyt.NVIDIA_PYTHON_ENV[False], str(checker))
    with pytest.raises(InputError) as error:
        pyt_steps.validate_inputs(workspace=str(workspace), **params())
    message = str(error.value)
    assert "train spec" in message and "key train.num_epoch" in message
    assert "NVIDIA's ExperimentConfig" in message


def test_the_steps_set_only_their_inputs_real_paths(tmp_path):
    specs = tmp_path / "specs"
    pyt_steps.write_yaml(
        specs / "evaluate.yaml",
        {"results_dir": str(tmp_path / "evaluate"), "evaluate": {"checkpoint": "planned"}},
    )
    (tmp_path / "evaluate").mkdir()
    (tmp_path / "evaluate" / "stale.txt").write_text("an earlier attempt")
    path = pyt_steps.step_spec(str(specs), "evaluate", {"evaluate.checkpoint": "/real.pth"})
    assert path == tmp_path / "evaluate" / "spec.yaml"
    assert yaml.safe_load(path.read_text())["evaluate"]["checkpoint"] == "/real.pth"
    assert not (tmp_path / "evaluate" / "stale.txt").exists()  # a retry starts clean


def test_checkpoint_finder_prefers_the_latest(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "model_epoch_001.pth").write_text("1")
    assert pyt.trained_checkpoint(tmp_path, "train").name == "model_epoch_001.pth"
    (train / "classifier_model_latest.pth").write_text("l")
    assert pyt.trained_checkpoint(tmp_path, "train").name == "classifier_model_latest.pth"
    with pytest.raises(FileNotFoundError, match="distill wrote no checkpoint"):
        pyt.trained_checkpoint(tmp_path, "distill")
