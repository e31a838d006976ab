"""Step 1: every bad input fails fast with a message that says how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.step_params import run_params
from tao_kfp import spec as spec_module
from tao_kfp.steps.validate import InputError, validate_inputs


def problems(workspace, **changes) -> str:
    with pytest.raises(InputError) as error:
        validate_inputs(**run_params(workspace, **changes))
    return str(error.value)


def test_valid_inputs_render_both_specs_under_the_run_directory(workspace):
    plan = validate_inputs(
        **run_params(workspace, spec_overrides='{"train_config": {"mixup_alpha": 0.2}}')
    )
    run_dir = workspace / "experiments" / "job-123"
    assert plan.run_dir == str(run_dir)
    assert plan.dataset_dir == str(workspace / "datasets" / "tiny")
    train = spec_module.load_spec(plan.train_spec)
    retrain = spec_module.load_spec(plan.retrain_spec)
    assert train.train_config.n_epochs == 3 and retrain.train_config.n_epochs == 2
    assert train.train_config.batch_size_per_gpu == 4
    assert train.train_config.lr_config.step.learning_rate == pytest.approx(0.01)
    assert train.train_config.mixup_alpha == pytest.approx(0.2)
    assert train.train_config.train_dataset_path == plan.dataset_dir + "/train"
    assert train.eval_config.eval_dataset_path == plan.dataset_dir + "/test"
    assert train.eval_config.model_path == ""  # no guessed checkpoint name
    assert retrain.train_config.pretrained_model_path == plan.pruned_model
    assert plan.pruned_model == str(run_dir / "prune" / "pruned_model.tlt")
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == "job-123"


def test_tao5_prunes_to_hdf5(workspace):
    assert validate_inputs(**run_params(workspace, tao_version="5")).pruned_model.endswith(".hdf5")


def test_use_imagenet_head_is_the_3x_name_only(workspace):
    """3.x docs write model_config.use_imagenet_head; TAO 5.0's proto has only retain_head."""
    overrides = '{"model_config": {"use_imagenet_head": true}}'
    plan = validate_inputs(**run_params(workspace, spec_overrides=overrides))
    assert spec_module.load_spec(plan.train_spec).model_config.use_imagenet_head
    with pytest.raises(InputError, match="retain_head"):
        validate_inputs(**run_params(workspace, tao_version="5", spec_overrides=overrides))


def test_voc_plan_points_tao_at_the_run_local_split(workspace, make_voc):
    make_voc(workspace / "voc" / "VOC2012")
    plan = validate_inputs(
        **run_params(workspace, dataset_path="voc/VOC2012", dataset_format="voc", batch_size=2)
    )
    assert plan.dataset_dir == str(workspace / "experiments" / "job-123" / "dataset")
    assert plan.dataset_source.endswith("voc/VOC2012")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"prune_threshold": 1.5}, "prune_threshold must be in (0, 1]"),
        ({"num_gpus": "0"}, "num_gpus must be a whole number from 1 to 16"),
        ({"num_gpus": "17"}, "num_gpus must be a whole number from 1 to 16"),
        ({"num_gpus": "2.0"}, "digits only"),
        ({"num_gpus": " 2"}, "digits only"),
        ({"dataset_format": "coco"}, "dataset_format must be one of class_folders, voc"),
        ({"dataset_path": "missing"}, "does not exist"),
        ({"dataset_path": "/etc"}, "outside the workspace"),
        ({"dataset_path": "datasets/tiny", "dataset_format": "voc"}, "not a Pascal VOC 2012"),
        ({"batch_size": 64}, "Lower batch_size"),
        ({"spec_overrides": "[1, 2]"}, "must be a YAML/JSON mapping"),
        ({"spec_overrides": "{bad"}, "not valid YAML/JSON"),
        ({"spec_overrides": "train_config: {n_epochs: 5}"}, "use the run parameter epochs"),
        (
            {"spec_overrides": '{"train_config.lr_config.step.learning_rate": 1}'},
            "use the run parameter learning_rate",
        ),
        ({"spec_overrides": "train_config: {no_such_field: 1}"}, "no_such_field"),
        ({"spec_overrides": "train_config: {n_workers: 0}"}, "n_workers"),
        ({"pretrained_model": "models/none.hdf5"}, "does not exist"),
        ({"pretrained_model": "/etc/passwd"}, "outside the workspace"),
        ({"base_spec": "specs/other.cfg"}, "base_spec"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else "",
)
def test_bad_inputs_are_reported_with_the_fix(workspace, changes, expected):
    assert expected in problems(workspace, **changes)


def test_all_problems_are_reported_together(workspace):
    message = problems(workspace, epochs=0, batch_size=0, dataset_format="coco")
    assert message.startswith("3 problem(s)")


def test_dataset_with_mismatched_classes(workspace, image_writer):
    image_writer(workspace / "datasets" / "tiny" / "val" / "extra", 2)
    assert "test lacks class folders ['extra']" in problems(workspace)


def test_dataset_needs_two_classes(tmp_path, class_folders):
    class_folders(tmp_path / "datasets" / "tiny", classes=("only",))
    assert "at least 2" in problems(tmp_path)


def test_dataset_needs_images_per_class(tmp_path, class_folders):
    class_folders(tmp_path / "datasets" / "tiny", counts=(6, 0, 2))
    assert "val needs at least 1 image(s) per class" in problems(tmp_path)


def test_dataset_missing_split(workspace):
    import shutil

    shutil.rmtree(workspace / "datasets" / "tiny" / "test")
    assert "lacks test/" in problems(workspace)


def test_unreadable_image_is_named(workspace):
    bad = workspace / "datasets" / "tiny" / "train" / "cat" / "img_000.png"
    bad.write_bytes(b"not a png")
    assert "img_000.png" in problems(workspace)


def test_every_image_of_every_split_is_decoded(workspace, tmp_path):
    """A truncated JPEG passes Pillow's verify(); only decoding finds it. Each bad file is named."""
    import io

    from PIL import Image

    from tao_kfp.steps.validate import check_images

    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(buffer, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 6 // 10])
    with Image.open(truncated) as image:
        image.verify()  # the sample check this replaces let such a file through
    (problem,) = check_images([truncated])
    assert problem.startswith(f"{truncated}: image file is truncated")

    root = workspace / "datasets" / "tiny"
    last = {
        split: sorted((root / split / "dog").iterdir())[-1] for split in ("train", "val", "test")
    }
    last["nested"] = root / "train" / "cat" / "more" / "extra.jpg"  # Keras reads subfolders too
    last["nested"].parent.mkdir()
    for image in last.values():
        image.write_bytes(truncated.read_bytes())
    message = problems(workspace)
    assert "4 unreadable image(s)" in message
    assert all(str(image) in message for image in last.values())


def test_ngc_reference_needs_ngcsdk_in_the_image(workspace, monkeypatch):
    from tao_kfp.steps import pretrained

    monkeypatch.setattr(pretrained, "ngcsdk_available", lambda: False)
    assert "ngcsdk" in problems(workspace, pretrained_model="nvidia/tao/x:resnet18")


def test_pretrained_sources(workspace, monkeypatch):
    from tao_kfp.steps import pretrained

    monkeypatch.setattr(pretrained, "ngcsdk_available", lambda: True)
    model = workspace / "models" / "mine.hdf5"
    model.parent.mkdir()
    model.write_bytes(b"h5")
    ngc = validate_inputs(
        **run_params(workspace, pretrained_model="nvidia/tao/pretrained_classification:resnet18")
    )
    assert ngc.pretrained_source == "nvidia/tao/pretrained_classification:resnet18"
    local = validate_inputs(**run_params(workspace, pretrained_model="file://models/mine.hdf5"))
    assert local.pretrained_source == str(model)
    assert local.pretrained_cache == str(workspace / "models" / "pretrained")


def test_missing_workspace_names_the_setting(tmp_path):
    with pytest.raises(InputError, match="claimName"):
        validate_inputs(**run_params(tmp_path / "not-mounted"))


def test_parent_references_cannot_escape_but_symlinks_inside_may_point_out(tmp_path, class_folders):
    outside = class_folders(tmp_path / "elsewhere")
    workspace = tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "linked").symlink_to(outside, target_is_directory=True)
    assert "outside the workspace" in problems(workspace, dataset_path="../elsewhere")
    plan = validate_inputs(**run_params(workspace, dataset_path="data/linked"))
    assert plan.dataset_dir == str(workspace / "data" / "linked")


@pytest.mark.parametrize("run_id", ["", "{{$.pipeline_job_uuid}}"])
def test_a_backend_without_run_ids_gets_a_fresh_run_folder_per_run(workspace, run_id):
    # KFP < 2.5.0 substitutes no run id (tao_kfp.kfp_backends): step 1 names the folder.
    first = validate_inputs(**run_params(workspace, run_id=run_id))
    second = validate_inputs(**run_params(workspace, run_id=run_id))
    assert first.run_dir != second.run_dir
    assert all(Path(p).parent == workspace / "experiments" for p in (first.run_dir, second.run_dir))
    assert "{{" not in first.run_dir
