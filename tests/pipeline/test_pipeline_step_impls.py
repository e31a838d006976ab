"""Step implementations against a fake TAO command (real spec files, real file layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Markdown, Metrics, Model
from pipeline_test_helpers import run_params

from tao_kfp import spec as spec_module
from tao_kfp.steps import common
from tao_kfp.steps.evaluate import run_evaluate
from tao_kfp.steps.export import run_convert, run_export_fp32, run_export_int8
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
    return validate_inputs(**run_params(workspace, run_id="job-1", num_gpus=2, base_spec=""))


def train_for(plan, tmp_path, **kwargs):
    return run_train(
        spec_path=plan.train_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "train")),
        dataset_dir=plan.dataset_dir,
        pretrained_model="",
        num_gpus=2,
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


def test_full_chain_after_training(plan, fake_tao, tmp_path):
    trained = train_for(plan, tmp_path)

    metrics = artifact(Metrics, tmp_path, "eval")
    confusion = artifact(ClassificationMetrics, tmp_path, "cm")
    evaluation = run_evaluate(
        spec_path=plan.train_spec,
        model_path=trained.model_path,
        results_dir=str(common.run_subdir(plan.run_dir, "evaluate")),
        classmap=trained.classmap,
        metrics=metrics,
        classification_metrics=confusion,
    )
    eval_spec = spec_module.load_spec(Path(plan.run_dir) / "evaluate" / "spec.cfg")
    assert eval_spec.eval_config.model_path == trained.model_path
    assert evaluation.top1_accuracy == pytest.approx(24 / 27)
    assert metrics.metadata["top3_accuracy"] == 1.0
    assert metrics.metadata["cat_f1"] == pytest.approx(0.89)
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

    int8 = run_export_int8(
        model_path=retrained.model_path,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "export_int8")),
    )
    calibration, export = fake_tao.calls()[-2:]
    assert calibration[0] == "calibration_tensorfile" and calibration[-2:] == ["-m", "4"]
    assert export[export.index("--data_type") + 1] == "int8"
    assert Path(int8.cal_cache).is_file()

    engine_metrics = artifact(Metrics, tmp_path, "engine")
    engine = run_convert(
        exported_model=int8.exported_model,
        cal_cache=int8.cal_cache,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "tensorrt")),
        metrics=engine_metrics,
    )
    assert Path(engine).is_file() and engine_metrics.metadata["engine_size_mb"] > 0
    converter = fake_tao.calls()[-1]
    assert converter[0] == int8.exported_model
    assert converter[converter.index("-d") + 1] == "3,224,224"
    assert converter[converter.index("-t") + 1] == "int8"

    # Retrying a step must not trip over files of the previous attempt.
    run_export_int8(
        model_path=retrained.model_path,
        spec_path=plan.retrain_spec,
        results_dir=str(common.run_subdir(plan.run_dir, "export_int8")),
    )


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
