"""The shipped pipeline, adapted for a laptop, run end to end with kfp.local on the CPU backend.

This is `make demo` with fewer epochs: the same package, adapt path, components and parsers as
on a cluster. It asserts on what every step produced, on disk and in the KFP outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tao_kfp import local_run

pytestmark = pytest.mark.slow

ALL_STEPS = {
    "validate-inputs",
    "prepare-dataset",
    "download-pretrained",
    "train",
    "evaluate",
    "prune",
    "retrain",
    "re-evaluate",
    "inference",
    "export-fp32",
    "export-int8",
    "convert-tensorrt",
}


@pytest.fixture(autouse=True)
def _fresh_kfp_local():
    yield
    from kfp.local import config

    config.LocalExecutionConfig.instance = None


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("demo")
    summary = local_run.run_local(out, parameters={"epochs": 4, "retrain_epochs": 3})
    from kfp.local import config

    config.LocalExecutionConfig.instance = None
    return out, summary


def test_every_step_succeeds_and_is_timed(demo_run):
    _, summary = demo_run
    assert summary.status == "SUCCESS"
    assert {step["task"] for step in summary.steps} == ALL_STEPS
    assert all(step["status"] == "SUCCESS" and step["seconds"] >= 0 for step in summary.steps)
    assert 0 < summary.backend_seconds < summary.pipeline_seconds


def test_accuracy_and_pruning_figures(demo_run):
    _, summary = demo_run
    assert summary.accuracy_before_pruning > 0.8
    assert summary.accuracy_after_pruning > 0.8
    assert 0 < summary.pruning_ratio < 1
    assert summary.parameters_after_pruning < summary.parameters_before_pruning
    assert summary.parameters_after_pruning == pytest.approx(
        summary.parameters_before_pruning * summary.pruning_ratio, rel=0.01
    )
    sizes = summary.model_sizes_mb
    assert sizes["pruned_model"] < sizes["trained_model"]
    assert sizes["engine_int8"] < sizes["exported_fp32"]


def test_kfp_ui_outputs(demo_run):
    _, summary = demo_run
    evaluate = summary.metrics["evaluate"]
    assert {"top1_accuracy", "top3_accuracy", "loss", "0_precision", "9_f1"} <= set(evaluate)
    assert summary.metrics["train"]["epochs"] == 4
    assert summary.metrics["retrain"]["epochs"] == 3
    assert summary.metrics["export-int8"]["calibration_batches"] >= 1


def test_files_each_step_wrote(demo_run):
    out, _ = demo_run
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    train = run_dir / "train"
    assert sorted(p.name for p in (train / "weights").iterdir()) == [
        f"resnet_{epoch:03d}.tlt" for epoch in range(1, 5)
    ]
    assert json.loads((train / "classmap.json").read_text()) == {str(d): d for d in range(10)}
    header = (train / "training.csv").read_text().splitlines()[0]
    assert header == "epoch,acc,loss,lr,val_acc,val_loss"
    assert (run_dir / "prune" / "pruned_model.tlt").is_file()
    assert len(list((run_dir / "retrain" / "weights").glob("resnet_*.tlt"))) == 3
    rows = (run_dir / "inference" / "images" / "result.csv").read_text().splitlines()
    assert len(rows) == 364  # digits' 20 % test split
    assert (run_dir / "export" / "model_fp32.etlt").is_file()
    assert {p.name for p in (run_dir / "export_int8").iterdir()} >= {
        "model_int8.etlt",
        "calibration.bin",
        "calibration.tensor",
    }
    assert list((run_dir / "tensorrt").glob("*.engine"))


def test_pipeline_returns_the_retrained_model(demo_run):
    out, summary = demo_run
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    assert Path(summary.final_model).is_file()
    executor_output = next((out / "pipeline-root").glob("*/retrain/executor_output.json"))
    (model,) = json.loads(executor_output.read_text())["artifacts"]["model"]["artifacts"]
    assert model["metadata"]["arch"] == "resnet"
    assert model["metadata"]["workspace_path"] == str(
        run_dir / "retrain" / "weights" / "resnet_003.tlt"
    )


def test_summary_and_report_written(demo_run):
    out, summary = demo_run
    written = json.loads((out / "summary.json").read_text())
    assert written["status"] == "SUCCESS"
    assert written["orchestration_seconds"] == pytest.approx(summary.orchestration_seconds)
    report = Path(summary.report).read_text()
    assert "Top-1 accuracy after pruning" in report and "convert-tensorrt" in report
    printed = local_run.format_summary(summary)
    assert "pruning ratio" in printed and str(out / "summary.json") in printed


def test_a_bad_dataset_fails_in_the_first_step(tmp_path):
    empty = tmp_path / "not-a-dataset"
    (empty / "train").mkdir(parents=True)
    summary = local_run.run_local(tmp_path / "out", dataset=empty)
    assert summary.status == "FAILURE"
    assert [(s["task"], s["status"]) for s in summary.steps] == [("validate-inputs", "FAILURE")]
