"""Step implementations against a fake TAO command (real spec files, real file layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from helpers.step_params import run_params
from tao_kfp import spec as spec_module
from tao_kfp.steps import common
from tao_kfp.steps.evaluate import run_evaluate
from tao_kfp.steps.export import run_build_engine, run_export_fp32, run_export_int8
from tao_kfp.steps.inference import run_inference
from tao_kfp.steps.prepare import prepare_dataset
from tao_kfp.steps.prune import run_prune
from tao_kfp.steps.train import publish_model, run_train
from tao_kfp.steps.validate import validate_inputs
from tao_kfp.tao import TaoCommandError


def artifact(kind, tmp_path: Path, name: str):
    return kind(uri=str(tmp_path / "artifacts" / name))


@pytest.fixture
def plan(workspace):
    return validate_inputs(**run_params(workspace, run_id="job-1", num_gpus="2", base_spec=""))


def export_int8(plan, model_path: str):
    """Step 11 on the retrained model, into the run's export_int8 folder."""
    return run_export_int8(
        model_path=model_path,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "export_int8")),
    )


def build_engine(plan, fp32, int8, metrics):
    """Step 12 from the outputs of steps 10 and 11, into the run's tensorrt folder."""
    return run_build_engine(
        int8_model=int8.exported_model,
        cal_cache=int8.cal_cache,
        fp32_model=fp32.exported_model,
        cal_data_file=int8.cal_tensorfile,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "tensorrt")),
        metrics=metrics,
    )


def train_for(plan, tmp_path, **kwargs):
    return run_train(
        spec_path=plan.train_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "train")),
        dataset_dir=plan.dataset_dir,
        pretrained_model="",
        num_gpus="2",
        **kwargs,
    )


def evaluate(plan, trained, **kwargs):
    """Evaluates a train_for result into the run's evaluate folder."""
    return run_evaluate(
        spec_path=plan.train_spec,
        model_path=trained.model_path,
        results_dir=str(common.run_subdir(plan.run_dir, "evaluate")),
        classmap=trained.classmap,
        **kwargs,
    )


def test_train_finds_the_newest_checkpoint_and_reports_curves(plan, fake_tao, tmp_path):
    metrics, report = artifact(Metrics, tmp_path, "m"), artifact(HTML, tmp_path, "r.html")
    result = train_for(plan, tmp_path, metrics=metrics, report_html=report)
    assert Path(result.model_path).name == "resnet_003.tlt"
    assert result.val_accuracy == pytest.approx(0.48)
    assert metrics.metadata["val_accuracy"] == pytest.approx(0.48)
    assert metrics.metadata["epochs"] == 3
    assert metrics.metadata["parameters"] == 7334274
    page = Path(report.path).read_text()
    assert page.count("<svg") == 3 and "polyline" in page
    (call,) = fake_tao.calls()
    assert call[:3] == ["train", "--gpus", "2"]
    assert "-k" not in call  # no model key configured
    used = spec_module.load_spec(call[call.index("-e") + 1])
    assert used.train_config.train_dataset_path == plan.dataset_dir + "/train"


def test_train_picks_hdf5_checkpoints_of_tao5(plan, fake_tao, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_TAO_EXT", "hdf5")
    assert Path(train_for(plan, tmp_path).model_path).name == "resnet_003.hdf5"


def test_model_key_reaches_tao_but_not_the_log(plan, fake_tao, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TAO_MODEL_KEY", "model-key-secret")
    train_for(plan, tmp_path)
    assert fake_tao.calls()[0][-2:] == ["-k", "model-key-secret"]
    assert "model-key-secret" not in capsys.readouterr().out
    log = Path(plan.run_dir) / "train" / "tao.log"
    assert "model-key-secret" not in log.read_text()


def test_tao_failure_status_fails_the_step(plan, fake_tao, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_TAO_FAIL", "train")
    with pytest.raises(TaoCommandError):
        train_for(plan, tmp_path)


def test_full_chain_after_training(plan, fake_tao, tmp_path, monkeypatch):
    monkeypatch.setenv("TAO_MODEL_KEY", "nvidia_tlt")  # 3.x evaluate/inference require -k
    trained = train_for(plan, tmp_path)

    metrics = artifact(Metrics, tmp_path, "eval")
    confusion = artifact(ClassificationMetrics, tmp_path, "cm")
    evaluation = evaluate(plan, trained, metrics=metrics, classification_metrics=confusion)
    eval_spec = spec_module.load_spec(Path(plan.run_dir) / "evaluate" / "spec.cfg")
    assert eval_spec.eval_config.model_path == trained.model_path
    # From per-image predictions: 6 test images, the fake gets the first (a cat) wrong as fox.
    assert evaluation.confusion_matrix == [[1, 0, 1], [0, 2, 0], [0, 0, 2]]
    assert evaluation.top1_accuracy == pytest.approx(5 / 6)
    assert metrics.metadata["top3_accuracy"] == 1.0
    assert metrics.metadata["cat_recall"] == pytest.approx(0.5)
    assert metrics.metadata["fox_precision"] == pytest.approx(2 / 3)
    assert metrics.metadata["fox_f1"] == pytest.approx(0.8)
    # The fake's printed matrix (8 on the diagonal) is complete and differs: flagged, not fatal.
    assert metrics.metadata["printout_agrees"] == 0.0
    evaluate_call, inference_call = fake_tao.calls()[-2:]
    assert evaluate_call[evaluate_call.index("-k") + 1] == "nvidia_tlt"
    assert inference_call[inference_call.index("-b") + 1] == "16"
    assert inference_call[inference_call.index("-k") + 1] == "nvidia_tlt"
    assert confusion.metadata["confusionMatrix"]["annotationSpecs"] == [
        {"displayName": name} for name in ("cat", "dog", "fox")
    ]

    prune_metrics = artifact(Metrics, tmp_path, "prune")
    pruned = run_prune(
        model_path=trained.model_path,
        output_path=plan.pruned_model,
        threshold=0.6,
        results_dir=str(common.run_subdir(plan.run_dir, "prune")),
        metrics=prune_metrics,
    )
    assert pruned.pruned_model == plan.pruned_model and pruned.ratio == 0.5
    assert prune_metrics.metadata["size_ratio"] == pytest.approx(0.5)
    assert ["-pth", "0.6"] == fake_tao.calls()[-1][5:7]

    retrained = run_train(
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "retrain")),
        dataset_dir=plan.dataset_dir,
        pretrained_model=pruned.pruned_model,
    )
    assert Path(retrained.model_path).name == "resnet_002.tlt"
    model = artifact(Model, tmp_path, "model")
    publish_model(model, retrained)
    assert Path(model.path).read_bytes() == Path(retrained.model_path).read_bytes()
    assert model.metadata["arch"] == "resnet"
    assert model.metadata["workspace_path"] == retrained.model_path
    assert model.metadata["accuracy"] == pytest.approx(0.47)

    table, predictions = artifact(Markdown, tmp_path, "t.md"), artifact(Dataset, tmp_path, "p")
    inferred = run_inference(
        model_path=retrained.model_path,
        spec_path=plan.retrain_spec,
        classmap=retrained.classmap,
        test_dir=plan.dataset_dir + "/test",
        results_dir=str(common.run_subdir(plan.run_dir, "inference")),
        table=table,
        predictions=predictions,
    )
    assert (inferred.images, inferred.correct) == (6, 5)  # the fake gets the first one wrong
    text = Path(table.path).read_text()
    assert "| class | images | correct | accuracy |" in text and "**no**" in text
    assert Path(predictions.path).read_text() == Path(inferred.result_csv).read_text()

    fp32_metrics = artifact(Metrics, tmp_path, "fp32")
    fp32 = run_export_fp32(
        model_path=retrained.model_path,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "export")),
        metrics=fp32_metrics,
    )
    assert fp32.exported_model.endswith("model_fp32.etlt")
    assert fp32_metrics.metadata["export_size_mb"] == pytest.approx(0.0005)
    # 3.x fp32 export: only the flags the 3.x notebook passes (-e is unverified).
    fp32_call = fake_tao.calls()[-1]
    assert fp32_call == [
        "export", "-m", retrained.model_path, "-o", fp32.exported_model,
        "--data_type", "fp32", "-k", "nvidia_tlt",
    ]  # fmt: skip

    int8 = export_int8(plan, retrained.model_path)
    calibration, export = fake_tao.calls()[-2:]
    assert calibration[0] == "calibration_tensorfile" and calibration[-2:] == ["-m", "4"]
    assert export[export.index("--data_type") + 1] == "int8"
    assert "-e" not in export
    # The batch size the TensorFile was written with: the calibrator fails on a stored batch
    # smaller than --batch_size, which defaults to 16 (tao_tensorflow1_backend 5.0
    # common/export/app.py:119-123, common/export/tensorfile_calibrator.py:91-109).
    spec_batch = spec_module.load_spec(plan.retrain_spec).train_config.batch_size_per_gpu
    assert export[export.index("--batch_size") + 1] == str(spec_batch)
    assert export[export.index("--batches") + 1] == calibration[-1]
    assert Path(int8.cal_cache).is_file()

    engine_metrics = artifact(Metrics, tmp_path, "engine")
    engine = build_engine(plan, fp32, int8, engine_metrics)
    assert Path(engine).is_file() and engine_metrics.metadata["engine_size_mb"] > 0
    converter = fake_tao.calls()[-1]
    assert converter[0] == int8.exported_model
    assert converter[converter.index("-d") + 1] == "3,224,224"
    assert converter[converter.index("-t") + 1] == "int8"

    # Retrying a step must not trip over files of the previous attempt.
    export_int8(plan, retrained.model_path)


def test_prepare_skips_class_folders_and_converts_voc(tmp_path, make_voc):
    skipped = prepare_dataset(dataset_format="class_folders", source="", dataset_dir="/d")
    assert (skipped.dataset_dir, skipped.status) == ("/d", "skipped")
    voc = make_voc(tmp_path / "VOC2012")
    out = tmp_path / "run" / "dataset"
    assert prepare_dataset(dataset_format="voc", source=str(voc), dataset_dir=str(out)).status == (
        "prepared"
    )
    assert prepare_dataset(dataset_format="voc", source=str(voc), dataset_dir=str(out)).status == (
        "reused"
    )
    assert json.dumps(sorted(p.name for p in (out / "train").iterdir())) == '["cat", "dog"]'


def test_missing_checkpoint_is_explained(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "other.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="other.txt"):
        common.find_latest_checkpoint(tmp_path, "resnet")


def test_latest_checkpoint_is_by_epoch_number(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("resnet_009.tlt", "resnet_010.tlt", "resnet_1000.tlt", "vgg_2000.tlt"):
        (weights / name).write_text("")
    assert common.find_latest_checkpoint(tmp_path, "resnet").name == "resnet_1000.tlt"


def test_tao5_route_exports_onnx_once_and_builds_the_engine_with_gen_trt_engine(
    plan, fake_tao, monkeypatch, tmp_path
):
    """Steps 10-12 on TAO 5.x, against the 5.0 argparse of export and gen_trt_engine."""
    monkeypatch.setenv("TAO_VERSION", "5")
    monkeypatch.setenv("FAKE_TAO_EXT", "hdf5")
    common.write_spec_with(
        plan.retrain_spec,
        {
            "train_config.visualizer.enabled": True,
            "train_config.visualizer.wandb_config.project": "p",
        },
        plan.retrain_spec,
    )
    model = Path(plan.run_dir) / "retrain" / "weights" / "resnet_002.hdf5"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"m" * 1000)

    fp32 = run_export_fp32(
        model_path=str(model),
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "export")),
    )
    # tao_tensorflow1_backend 5.0 common/export/app.py: -m (42-47, required), -o (54-58),
    # --data_type (80-85), -e (138-142); no -k without a key (48-53, optional).
    assert fake_tao.calls()[-1] == [
        "export", "-m", str(model), "-o", fp32.exported_model, "--data_type", "fp32",
        "-e", plan.retrain_spec,
    ]  # fmt: skip
    assert fp32.exported_model.endswith("model_fp32.onnx")

    calls_before = len(fake_tao.calls())
    int8 = export_int8(plan, str(model))
    new_calls = fake_tao.calls()[calls_before:]
    # 5.0's export writes no calibration cache without --engine_file (app.py:242-244): step 11
    # only writes the TensorFile; the ONNX model is exported once, in step 10.
    assert [call[0] for call in new_calls] == ["calibration_tensorfile"]
    assert int8.exported_model == "" and int8.cal_cache == ""
    assert Path(int8.cal_tensorfile).is_file()

    metrics = artifact(Metrics, tmp_path, "engine")
    engine = build_engine(plan, fp32, int8, metrics)
    call = fake_tao.calls()[-1]
    # tao_deploy 5.0 (a285787) cv/classification_tf1/scripts/gen_trt_engine.py: -m (100-105),
    # -e (114-119) and -r (190-196) are required; INT8 flags at 121-171.
    assert call[0] == "gen_trt_engine"
    assert call[call.index("-m") + 1] == fp32.exported_model
    assert call[call.index("-r") + 1] == str(Path(engine).parent)
    assert call[call.index("--data_type") + 1] == "int8"
    assert call[call.index("--cal_data_file") + 1] == int8.cal_tensorfile
    assert call[call.index("--engine_file") + 1] == engine
    assert "--cal_cache_file" in call
    # The TensorFile exists, so --cal_image_dir is unused (tao_deploy engine_builder.py:281-288)
    # and a dataset path there could only break the launcher's re-split (issue 19, section 1).
    assert "--cal_image_dir" not in call
    # --batches/--batch_size are the ones step 11 wrote the TensorFile with, not a recount.
    tensorfile_call = new_calls[0]
    assert call[call.index("--batches") + 1] == tensorfile_call[tensorfile_call.index("-m") + 1]
    spec_batch = spec_module.load_spec(plan.retrain_spec).train_config.batch_size_per_gpu
    assert call[call.index("--batch_size") + 1] == str(spec_batch)
    assert call[call.index("--max_batch_size") + 1] == call[call.index("--batch_size") + 1]
    deploy_spec = Path(call[call.index("-e") + 1]).read_text()
    assert "wandb_config" not in deploy_spec and "visualizer" in deploy_spec
    assert metrics.metadata["engine_size_mb"] > 0 and metrics.metadata["calibration_cache_mb"] > 0


def test_tao3_evaluate_refuses_to_run_without_a_key(plan, fake_tao, tmp_path):
    """3.x evaluate declares -k required (docs/tao-contract.md)."""
    trained = train_for(plan, tmp_path)
    calls = len(fake_tao.calls())
    with pytest.raises(TaoCommandError, match="require -k"):
        evaluate(plan, trained)
    assert len(fake_tao.calls()) == calls, "TAO is not started"


def test_tao5_evaluate_runs_without_a_key(plan, fake_tao, monkeypatch, tmp_path):
    monkeypatch.setenv("TAO_VERSION", "5")
    trained = train_for(plan, tmp_path)
    result = evaluate(plan, trained)
    assert result.top1_accuracy == pytest.approx(5 / 6)
    assert all("-k" not in call for call in fake_tao.calls())


def class_name(index: int) -> str:
    """Folder names with spaces, digits, underscores and double underscores."""
    return [f"class {index}", f"c__{index}", f"{index}_x", f"{index}"][index % 4]


def test_101_class_evaluation_is_exact_and_names_are_attributed(
    workspace, class_folders, fake_tao, monkeypatch, tmp_path
):
    """numpy elides the printed 101x101 matrix; the figures come from per-image predictions."""
    monkeypatch.setenv("TAO_MODEL_KEY", "nvidia_tlt")
    names = [class_name(i) for i in range(101)]
    class_folders(workspace / "datasets" / "many", classes=names, counts=(2, 1, 1))
    plan = validate_inputs(
        **run_params(workspace, run_id="job-101", dataset_path="datasets/many", base_spec="")
    )
    trained = run_train(
        spec_path=plan.train_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "train")),
        dataset_dir=plan.dataset_dir,
        pretrained_model="",
    )
    metrics = artifact(Metrics, tmp_path, "eval")
    confusion = artifact(ClassificationMetrics, tmp_path, "cm")
    result = evaluate(plan, trained, metrics=metrics, classification_metrics=confusion)
    ordered = sorted(names)
    first, last = ordered[0], ordered[-1]  # the fake predicts the first test image as `last`
    assert result.class_names == ordered and len(result.confusion_matrix) == 101
    assert result.top1_accuracy == pytest.approx(100 / 101)
    values = metrics.metadata
    assert (values[f"{first}_recall"], values[f"{first}_precision"]) == (0.0, 0.0)
    assert values[f"{last}_precision"] == pytest.approx(0.5)
    assert values[f"{last}_recall"] == 1.0
    assert values[f"{last}_f1"] == pytest.approx(2 / 3)
    for name in set(names) - {first, last}:
        assert values[f"{name}_f1"] == 1.0, name
    assert "printout_agrees" not in values  # the printout was elided: no cross-check
    matrix = confusion.metadata["confusionMatrix"]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == ordered
    assert sum(sum(row["row"]) for row in matrix["rows"]) == 101

    table = artifact(Markdown, tmp_path, "t.md")
    inferred = run_inference(
        model_path=trained.model_path,
        spec_path=plan.train_spec,
        classmap=trained.classmap,
        test_dir=plan.dataset_dir + "/test",
        results_dir=str(common.run_subdir(plan.run_dir, "inference")),
        table=table,
    )
    assert (inferred.images, inferred.correct) == (101, 100)
    text = Path(table.path).read_text()
    for name in ("c__1", "class 0", "2_x", "3"):
        assert f"| {name} | 1 | 1 | 1.000 |" in text, name
