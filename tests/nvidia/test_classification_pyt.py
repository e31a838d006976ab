"""NVIDIA's classification_pyt (nvidia-tao-pytorch 7.3.0) runs every step of our route on the CPU.

One module-scoped run: train -> evaluate -> quantize -> evaluate the quantized model ->
inference -> export ONNX, on a 3-class, 32 px dataset for 1 epoch, with the specs
tao_kfp.routes.pyt writes. Our readers then parse the files NVIDIA's code wrote. The only
change to NVIDIA's code is tao-env/cpu-shim (Trainer accelerator, torch.cuda.set_device).
"""

from __future__ import annotations

import copy
import time

import onnx
import pytest

from helpers.nvidia_data import CLASSES, IMG_SIZE, SPLITS, make_dataset, write_spec
from tao_kfp.routes import pyt, pyt_steps

pytestmark = pytest.mark.nvidia

PASS = "Execution status: PASS"
STEPS = ("train", "evaluate", "quantize", "evaluate-quantized", "inference", "export")


@pytest.fixture(scope="module")
def route(tmp_path_factory, tao_pyt_env):
    """Runs the route's six steps once; returns (workdir, results, {step: (process, seconds)})."""
    work = tmp_path_factory.mktemp("pyt")
    data = make_dataset(work / "data")
    results = work / "results"
    spec = pyt.training_spec(
        results_dir=results,
        dataset_dir=data,
        num_classes=len(CLASSES),
        img_size=IMG_SIZE,
        batch_size=4,
        epochs=1,
        cpu=True,
    )
    spec_file = write_spec(work / "spec.yaml", spec)
    quantized = copy.deepcopy(spec)
    quantized["results_dir"] = str(results / "compressed")
    quantized["evaluate"] = {
        "checkpoint": str(results / "quantize" / "quantized_model_torchao.pth"),
        "is_quantized": True,
    }
    quantized_file = write_spec(work / "spec-quantized.yaml", quantized)
    plan = [
        ("train", spec_file),
        ("evaluate", spec_file),
        ("quantize", spec_file),
        ("evaluate-quantized", quantized_file),
        ("inference", spec_file),
        ("export", spec_file),
    ]
    ran = {}
    for step, spec_path in plan:
        action = step.split("-")[0]
        started = time.monotonic()
        process = tao_pyt_env.run(pyt.command(action, spec_path), cwd=work)
        ran[step] = (process, time.monotonic() - started)
        print(f"classification_pyt {action}: exit {process.returncode}, {ran[step][1]:.1f} s")
        if process.returncode != 0:
            break  # the later steps need this one's output
    return work, results, ran


@pytest.mark.parametrize("step", STEPS)
def test_every_step_passes_in_nvidia_code(route, step):
    _, _, ran = route
    assert step in ran, f"{step} did not run: an earlier step failed"
    process, _ = ran[step]
    assert process.returncode == 0 and PASS in process.stdout, process.stdout[-3000:]


def test_evaluate_kpi_and_result_csv_agree(route):
    _, results, _ = route
    status = pyt.read_status(results, "evaluate")
    assert not status.failed
    predictions = pyt.read_results_csv(results / "evaluate" / "result.csv")
    assert len(predictions) == SPLITS["val"] * len(CLASSES)
    assert {p.label for p in predictions} == set(CLASSES)
    assert {p.predicted for p in predictions} <= set(CLASSES)
    assert status.kpi["val_acc_1"] == pytest.approx(pyt.accuracy(predictions), abs=1e-6)


def test_train_writes_checkpoint_and_kpi(route):
    _, results, _ = route
    assert (results / "train" / "classifier_model_latest.pth").is_file()
    assert "train_loss" in pyt.read_status(results, "train").kpi


def test_quantized_model_is_written_and_evaluated(route):
    _, results, _ = route
    assert (results / "quantize" / "quantized_model_torchao.pth").is_file()
    status = pyt.read_status(results / "compressed", "evaluate")
    assert 0.0 <= status.kpi["val_acc_1"] <= 1.0


def test_inference_result_csv_covers_the_test_images(route):
    _, results, _ = route
    predictions = pyt.read_results_csv(results / "inference" / "result.csv")
    assert len(predictions) == SPLITS["test"] * len(CLASSES)
    assert pyt.accuracy(predictions) is None  # inference writes no ground truth


def test_export_writes_an_onnx_model_of_our_input_size(route):
    _, results, _ = route
    model = onnx.load(str(results / "export" / "model.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, IMG_SIZE, IMG_SIZE]
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim][1:] == [
        len(CLASSES)
    ]


def test_a_wrong_spec_key_fails_with_nvidias_error(route, tao_pyt_env):
    work, results, _ = route
    spec = pyt.training_spec(results_dir=work / "bad", dataset_dir=work / "data", num_classes=3)
    spec["train"]["num_epoch"] = 1  # typo of num_epochs
    process = tao_pyt_env.run(pyt.command("train", write_spec(work / "bad-key.yaml", spec)), work)
    assert process.returncode != 0
    assert "Key 'num_epoch' not in 'TrainExpConfig'" in process.stdout, process.stdout[-3000:]


def test_a_wrong_flag_fails_with_nvidias_error(route, tao_pyt_env):
    work, _, _ = route
    process = tao_pyt_env.run(
        ["classification_pyt", "train", "--experiment_spec_fiel", "./spec.yaml"], work
    )
    # nvidia_tao_pytorch core/entrypoint.py:243-250: the misspelling is an unknown
    # argument, so -e is missing.
    assert process.returncode != 0
    expected = (
        "ERROR: The subtask `train` requires the following argument: -e/--experiment_spec_file"
    )
    assert expected in process.stdout, process.stdout[-3000:]


def test_distill_with_our_spec_passes_and_its_student_exports(route, tao_pyt_env, monkeypatch):
    """The compress step's distill spec (routes.pyt.run_specs) on the trained model.

    NVIDIA's distilled checkpoint also holds its loss module (student and teacher again), which
    NVIDIA's own export refuses to load; pyt_steps.student_checkpoint keeps the student.
    """
    work, results, _ = route
    run = work / "distill-run"
    specs = pyt.run_specs(
        run_dir=run,
        dataset_dir=work / "data",
        num_classes=len(CLASSES),
        epochs=1,
        compress_epochs=1,
        batch_size=4,
        learning_rate=0.001,
        compression="distill",
        student_backbone="efficientvit_b0",
        engine_precision="fp16",
        overrides={"dataset": {"img_size": IMG_SIZE}},
        cpu=True,
    )
    spec = specs["compress"]
    spec["distill"]["pretrained_teacher_model_path"] = str(
        results / "train" / "classifier_model_latest.pth"
    )
    process = tao_pyt_env.run(pyt.command("distill", write_spec(run / "distill.yaml", spec)), work)
    assert process.returncode == 0 and PASS in process.stdout, process.stdout[-3000:]
    distilled = pyt.trained_checkpoint(run / "compress", "distill")
    export = specs["export"]
    export["export"]["onnx_file"] = str(run / "student.onnx")
    export["export"]["checkpoint"] = str(distilled)
    refused = tao_pyt_env.run(pyt.command("export", write_spec(run / "e1.yaml", export)), work)
    assert refused.returncode != 0
    assert "Unexpected key(s) in state_dict" in refused.stdout, refused.stdout[-3000:]

    monkeypatch.setenv("TAO_ENTRYPOINT", str(tao_pyt_env.root / "bin" / "classification_pyt"))
    student = pyt_steps.student_checkpoint(distilled)
    export["export"]["checkpoint"] = str(student)
    process = tao_pyt_env.run(pyt.command("export", write_spec(run / "e2.yaml", export)), work)
    assert process.returncode == 0 and PASS in process.stdout, process.stdout[-3000:]
    assert (run / "student.onnx").stat().st_size > 0
