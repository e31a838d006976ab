"""The experiment spec: real protobuf parsing, overrides, TAO 5.0 validation and `spec render`."""

import argparse
import hashlib
from pathlib import Path

import pytest

from tao_kfp import cli
from tao_kfp import spec as spec_command
from tao_kfp.resources import shipped_file
from tao_kfp.spec import (
    TASKS,
    ExperimentSpec,
    SpecError,
    apply_overrides,
    default_spec,
    dump_spec,
    load_spec,
    parse_spec,
    validate_spec,
    write_rendered,
)

# --- the shipped notebook spec ----------------------------------------------------------------


def test_default_spec_is_the_notebook_spec():
    spec = default_spec()
    model, train, evaluation = spec.model_config, spec.train_config, spec.eval_config
    assert (model.arch, model.n_layers, model.input_image_size) == ("resnet", 18, "3,224,224")
    assert model.use_batch_norm and model.all_projections
    assert list(model.freeze_blocks) == [0, 1]
    assert train.optimizer.WhichOneof("optim") == "sgd"
    assert (train.optimizer.sgd.lr, train.optimizer.sgd.momentum) == pytest.approx((0.01, 0.9))
    assert (train.batch_size_per_gpu, train.n_epochs, train.n_workers) == (64, 80, 16)
    assert train.preprocess_mode == "caffe"
    assert train.enable_random_crop and train.enable_center_crop
    assert train.mixup_alpha == pytest.approx(0.1)
    assert (train.reg_config.type, train.reg_config.scope) == ("L2", "Conv2D,Dense")
    assert train.reg_config.weight_decay == pytest.approx(5e-5)
    assert train.lr_config.WhichOneof("lr_scheduler") == "step"
    step = train.lr_config.step
    assert (step.learning_rate, step.step_size, step.gamma) == pytest.approx((0.006, 10, 0.1))
    assert (evaluation.top_k, evaluation.batch_size, evaluation.n_workers) == (3, 256, 8)


@pytest.mark.parametrize("task", TASKS)
def test_default_spec_is_valid_for_every_task(task):
    assert validate_spec(default_spec(), task) == []


def test_default_spec_returns_an_independent_copy():
    first = default_spec()
    first.train_config.n_epochs = 1
    assert default_spec().train_config.n_epochs == 80


def test_dump_and_parse_round_trip_and_print_floats_shortest():
    spec = default_spec()
    text = dump_spec(spec)
    assert parse_spec(text) == spec
    assert "lr: 0.01\n" in text and "weight_decay: 5e-05\n" in text
    assert text.index("model_config") < text.index("train_config") < text.index("eval_config")


def test_parse_accepts_notebook_syntax_commas_capitalised_bools_and_maps():
    spec = parse_spec(
        'model_config { arch: "resnet", resize_interpolation_method: BICUBIC }\n'
        "train_config {\n  optimizer { sgd { nesterov: False } }\n"
        "  image_mean { key: 'b' value: 103.939 }\n  image_mean { key: 'g' value: 116.779 }\n}\n"
    )
    assert spec.model_config.resize_interpolation_method == 1
    assert dict(spec.train_config.image_mean) == pytest.approx({"b": 103.939, "g": 116.779})


# --- parse errors -----------------------------------------------------------------------------


def test_unknown_field_names_file_line_field_and_valid_fields(tmp_path):
    path = tmp_path / "spec.cfg"
    path.write_text('model_config {\n  arch: "resnet"\n}\ntrain_config {\n  n_epoch: 10\n}\n')
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert message.startswith(f"{path}:5:")
    assert "unknown field 'n_epoch' in train_config" in message
    assert "n_epochs" in message and "batch_size_per_gpu" in message
    assert "line 5: n_epoch: 10" in message


def test_3x_docs_field_use_imagenet_head_is_accepted():
    # TAO 3.x docs (TLT 3.0, TAO 3.22.02 specs) write use_imagenet_head in model_config.
    spec = parse_spec("model_config { use_imagenet_head: true }")
    assert spec.model_config.use_imagenet_head


def test_deploy_spec_drops_exactly_the_fields_the_tao_deploy_proto_lacks():
    """tao_deploy 5.0 (a285787) classification_tf1/proto/visualizer_config.proto:9-18 has only
    enabled, num_images, weight_histograms; model_config.proto:26-42 has no use_imagenet_head."""
    from tao_kfp.spec import deploy_spec, dump_spec

    spec = parse_spec(
        "model_config { arch: 'resnet' use_imagenet_head: true retain_head: true }\n"
        "train_config { visualizer { enabled: true num_images: 3 weight_histograms: true\n"
        "  wandb_config { enabled: true project: 'p' } clearml_config { project: 'c' } } }"
    )
    text = dump_spec(deploy_spec(spec))
    for absent in ("use_imagenet_head", "wandb_config", "clearml_config"):
        assert absent not in text
    for kept in ("retain_head: true", "enabled: true", "num_images: 3", "weight_histograms"):
        assert kept in text
    assert spec.train_config.visualizer.HasField("wandb_config"), "the input is left unchanged"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train_config { n_epochs: 1 n_epochs: 2 }", 'multiple "n_epochs" fields'),
        ("train_config { optimizer { sgd {} adam {} } }", "oneof"),
        ('train_config { n_epochs: "80" }', "Couldn't parse integer"),
        ("model_config { resize_interpolation_method: NEAREST }", "NEAREST"),
        ("model_config { arch: resnet", ""),
    ],
    ids=["duplicate", "two oneof members", "quoted number", "bad enum", "truncated"],
)
def test_malformed_text_is_a_spec_error_with_a_position(text, expected):
    with pytest.raises(SpecError, match=r"^<spec text>:1:\d+: ") as error:
        parse_spec(text)
    assert expected in str(error.value)


def test_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file .*nope.cfg"):
        load_spec(tmp_path / "nope.cfg")


# --- overrides --------------------------------------------------------------------------------


def test_dotted_and_nested_overrides_are_equivalent_and_leave_the_input_alone():
    base = default_spec()
    dotted = apply_overrides(base, {"train_config.n_epochs": 10, "model_config.n_layers": 34})
    nested = apply_overrides(
        base, {"train_config": {"n_epochs": 10}, "model_config": {"n_layers": 34}}
    )
    assert dotted == nested
    assert (dotted.train_config.n_epochs, dotted.model_config.n_layers) == (10, 34)
    assert dotted.train_config.batch_size_per_gpu == 64  # merged, not replaced
    assert base.train_config.n_epochs == 80


def test_setting_another_oneof_member_clears_the_current_one():
    spec = apply_overrides(default_spec(), {"train_config.optimizer.adam.lr": 1e-3})
    assert spec.train_config.optimizer.WhichOneof("optim") == "adam"
    assert spec.train_config.optimizer.adam.lr == pytest.approx(1e-3)
    assert "sgd" not in dump_spec(spec)
    cosine = apply_overrides(spec, {"train_config": {"lr_config": {"cosine": {}}}})
    assert cosine.train_config.lr_config.WhichOneof("lr_scheduler") == "cosine"


def test_two_members_of_one_oneof_in_the_same_override_are_rejected():
    with pytest.raises(SpecError, match="only one of sgd, adam, rmsprop"):
        apply_overrides(default_spec(), {"train_config.optimizer": {"sgd": {}, "adam": {}}})


def test_repeated_and_map_fields():
    spec = apply_overrides(
        default_spec(),
        {
            "model_config.freeze_blocks": [2, 3, 4],
            "train_config.image_mean": {"r": 123.68, "g": 116.779, "b": 103.939},
            "train_config.lr_config.soft_anneal.annealing_points": [0.3, 0.6],
        },
    )
    assert list(spec.model_config.freeze_blocks) == [2, 3, 4]
    assert set(spec.train_config.image_mean) == {"r", "g", "b"}
    assert list(spec.train_config.lr_config.soft_anneal.annealing_points) == pytest.approx(
        [0.3, 0.6]
    )
    one_entry = apply_overrides(spec, {"train_config.image_mean.b": 100})
    assert dict(one_entry.train_config.image_mean) == pytest.approx(
        {"r": 123.68, "g": 116.779, "b": 100}
    )
    replaced = apply_overrides(spec, {"train_config": {"image_mean": {"l": 117.3786}}})
    assert list(replaced.train_config.image_mean) == ["l"]


def test_none_resets_a_field_or_removes_a_section():
    spec = apply_overrides(
        default_spec(), {"eval_config": None, "model_config.freeze_blocks": None}
    )
    assert not spec.HasField("eval_config")
    assert list(spec.model_config.freeze_blocks) == []


def test_whole_floats_are_accepted_for_integer_fields():
    # Helm's toYaml prints 1000000 as 1e+06, which YAML reads back as a float.
    spec = apply_overrides(default_spec(), {"train_config.random_seed": 1e6})
    assert spec.train_config.random_seed == 1_000_000


def test_enum_override_by_name():
    spec = apply_overrides(default_spec(), {"model_config.resize_interpolation_method": "BICUBIC"})
    assert "resize_interpolation_method: BICUBIC" in dump_spec(spec)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"train_config.n_epoch": 5}, "unknown override key 'train_config.n_epoch'"),
        ({"train_config": {"n_epoch": 5}}, "unknown override key 'train_config.n_epoch'"),
        ({"modelconfig": {}}, "'modelconfig' is not a field of the top level"),
        (
            {"train_config.n_epochs": "10"},
            "train_config.n_epochs must be a whole number >= 0, got str '10'",
        ),
        ({"train_config.n_epochs": 10.5}, "train_config.n_epochs must be a whole number"),
        ({"train_config.n_epochs": -1}, "train_config.n_epochs must be a whole number >= 0"),
        ({"train_config.n_epochs": True}, "train_config.n_epochs must be a whole number"),
        ({"train_config.enable_random_crop": "yes"}, "must be true or false"),
        ({"train_config.mixup_alpha": "0.1"}, "train_config.mixup_alpha must be a number"),
        ({"model_config.input_image_size": 224}, "must be a string"),
        ({"model_config.freeze_blocks": 1}, "model_config.freeze_blocks is a repeated field"),
        ({"model_config.freeze_blocks": [0, "1"]}, "model_config.freeze_blocks[1] must be a whole"),
        ({"train_config.image_mean": [1, 2]}, "train_config.image_mean is a map"),
        ({"train_config.image_mean.b": "x"}, "train_config.image_mean.b must be a number"),
        ({"model_config.resize_interpolation_method": "NEAREST"}, "one of BILINEAR, BICUBIC"),
        ({"train_config": 5}, "override train_config must be a mapping"),
        ({"train_config.n_epochs.value": 5}, "train_config.n_epochs is a single value"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_bad_overrides_name_the_key(overrides, expected):
    with pytest.raises(SpecError) as error:
        apply_overrides(default_spec(), overrides)
    assert expected in str(error.value)


def test_unknown_key_lists_the_valid_fields():
    with pytest.raises(SpecError) as error:
        apply_overrides(default_spec(), {"eval_config.topk": 1})
    assert "valid fields: eval_dataset_path, model_path, top_k, batch_size" in str(error.value)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"model_config.arch": "resnet18"}, 'write arch: "resnet" and n_layers: 18'),
        ({"model_config.arch": ""}, "model_config.arch must be one of resnet, vgg"),
        ({"model_config.input_image_size": ""}, "input_image_size must be set (got '')"),
        ({"model_config.input_image_size": "224,224"}, 'must be "C,H,W" such as "3,224,224"'),
        ({"model_config.input_image_size": "4,224,224"}, "channels must be 1 or 3 (got 4)"),
        ({"model_config.input_image_size": "3,8,224"}, "height and width must be >= 16"),
        ({"model_config.n_layers": 20}, "model_config.n_layers must be one of 10, 18, 34"),
        ({"model_config.dropout": -0.5}, "model_config.dropout must be >= 0 (got -0.5)"),
        ({"model_config.activation": {}}, "model_config.activation.activation_type must be set"),
        ({"train_config.n_epochs": 0}, "train_config.n_epochs must be > 0 (got 0)"),
        ({"train_config.batch_size_per_gpu": 0}, "train_config.batch_size_per_gpu must be > 0"),
        ({"train_config.n_workers": 0}, "train_config.n_workers must be > 0 (got 0)"),
        ({"eval_config.n_workers": 0}, "eval_config.n_workers must be > 0 (got 0)"),
        ({"train_config.train_dataset_path": ""}, "train_config.train_dataset_path must be set"),
        ({"train_config.val_dataset_path": ""}, "train_config.val_dataset_path must be set"),
        ({"eval_config.eval_dataset_path": ""}, "eval_config.eval_dataset_path must be set"),
        ({"train_config.preprocess_mode": "keras"}, "one of tf, caffe, torch (got 'keras')"),
        ({"train_config.optimizer.sgd.lr": 0}, "train_config.optimizer.sgd.lr must be > 0 (got 0)"),
        ({"train_config.optimizer.adam": {"beta_1": 1}}, "optimizer.adam.lr must be > 0 (got 0)"),
        ({"train_config.lr_config.step.learning_rate": 0}, "learning_rate must be > 0 (got 0)"),
        ({"train_config.lr_config.step.step_size": 150}, "step.step_size must be <= 100 (got 150)"),
        ({"train_config.lr_config.step.gamma": 1.5}, "step.gamma must be <= 1 (got 1.5)"),
        ({"train_config.lr_config.soft_anneal": {"learning_rate": 1, "annealing_points": [1, -1]}},
         "soft_anneal.annealing_points[1] must be >= 0 (got -1)"),
        ({"train_config.reg_config.type": "L3"}, "reg_config.type must be one of L1, L2, None"),
        ({"train_config.reg_config.scope": ""}, "train_config.reg_config.scope must be set"),
        ({"train_config.reg_config.weight_decay": 0}, "weight_decay must be > 0 (got 0)"),
        ({"train_config.reg_config.weight_decay": 1}, "weight_decay must be < 1 (got 1)"),
        ({"train_config.optimizer": None}, "train_config.optimizer is missing"),
        ({"train_config.reg_config": None}, "train_config.reg_config is missing"),
        ({"train_config.lr_config": None}, "train_config.lr_config is missing"),
        ({"train_config.image_mean": {"b": 1.0}}, "image_mean needs a value for g, r with 3"),
        ({"eval_config.top_k": 0}, "eval_config.top_k must be > 0 (got 0)"),
    ],
    ids=lambda value: str(value)[:50],
)  # fmt: skip
def test_validation_rule_messages_name_the_field_value_and_limit(overrides, expected):
    problems = validate_spec(apply_overrides(default_spec(), overrides), "train")
    assert any(expected in problem for problem in problems), problems


def test_tao_checks_unset_fields_of_present_sections():
    # TAO 5.0 applies its rules even to unset scalars: an empty train_config fails them all.
    spec = parse_spec(
        "model_config { arch: 'resnet' input_image_size: '3,224,224' }\ntrain_config {}"
    )
    problems = validate_spec(spec, "train")
    for expected in (
        "train_config.train_dataset_path must be set (got '')",
        "train_config.n_epochs must be > 0 (got 0)",
        "train_config.preprocess_mode must be one of tf, caffe, torch (got '')",
        "train_config.optimizer is missing",
    ):
        assert expected in " | ".join(problems)


def test_empty_optimizer_and_lr_config_must_choose_a_member():
    spec = default_spec()
    for section in (spec.train_config.optimizer, spec.train_config.lr_config):
        section.Clear()
        section.SetInParent()  # present but empty: `optimizer {}`
    problems = validate_spec(spec, "train")
    assert problems == [
        "train_config.optimizer must contain one of sgd, adam, rmsprop, "
        "e.g. optimizer { sgd { lr: 0.01 momentum: 0.9 } }",
        "train_config.lr_config must contain one of step, soft_anneal, cosine, "
        "e.g. lr_config { step { learning_rate: 0.006 step_size: 10 gamma: 0.1 } }",
    ]


@pytest.mark.parametrize(
    "task, missing",
    [("train", []), ("evaluate", ["eval_config"]), ("inference", ["eval_config"]), ("prune", [])],
)
def test_required_sections_per_task(task, missing):
    spec = apply_overrides(default_spec(), {"eval_config": None})
    problems = validate_spec(spec, task)
    assert [p.split()[0] for p in problems if "is missing" in p] == missing


def test_prune_needs_no_spec_and_evaluate_needs_a_model_path():
    assert validate_spec(ExperimentSpec(), "prune") == []
    spec = apply_overrides(default_spec(), {"eval_config.model_path": ""})
    assert validate_spec(spec, "inference") == []
    assert ["eval_config.model_path must be set for evaluate"] == [
        p.split(":")[0] for p in validate_spec(spec, "evaluate")
    ]


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task 'training'"):
        validate_spec(default_spec(), "training")


# --- tao-kfp spec render / validate -----------------------------------------------------------


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def overrides_file(tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text(
        "train_config:\n  n_epochs: 5\n  optimizer:\n    adam:\n      lr: 0.001\n"
        "model_config.freeze_blocks: [0]\n"
        "eval_config.model_path: /workspace/experiments/x/weights/resnet_005.tlt\n"
    )
    return path


def spec_cli(*argv):
    """Runs `tao-kfp spec ...` through the module's own parser (independent of other commands)."""
    parser = argparse.ArgumentParser(prog="tao-kfp spec")
    spec_command.add_arguments(parser)
    return spec_command.run(parser.parse_args([str(arg) for arg in argv]))


def render(out, overrides, *extra):
    return spec_cli("render", "--overrides", overrides, "--out", out, *extra)


def test_render_writes_the_spec_and_its_hash(tmp_path, overrides_file, capsys):
    out = tmp_path / "specs" / "classification_spec.cfg"
    assert render(out, overrides_file) == 0
    spec = load_spec(out)
    assert spec.train_config.n_epochs == 5
    assert spec.train_config.optimizer.WhichOneof("optim") == "adam"
    assert list(spec.model_config.freeze_blocks) == [0]
    assert (tmp_path / "specs" / "classification_spec.cfg.sha256").read_text() == (
        f"{sha256(out)}  classification_spec.cfg\n"
    )
    assert f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "classification_spec.cfg",
        "classification_spec.cfg.sha256",
    ]  # no temporary files left behind


def test_render_rewrites_its_own_file_when_values_change(tmp_path, overrides_file):
    out = tmp_path / "spec.cfg"
    assert render(out, overrides_file) == 0
    overrides_file.write_text("train_config.n_epochs: 7\n")
    assert render(out, overrides_file) == 0
    assert load_spec(out).train_config.n_epochs == 7


def test_render_keeps_a_hand_edited_file_unless_forced(tmp_path, overrides_file, capsys):
    out = tmp_path / "spec.cfg"
    assert render(out, overrides_file) == 0
    edited = out.read_text().replace("n_epochs: 5", "n_epochs: 42")
    out.write_text(edited)
    capsys.readouterr()

    assert render(out, overrides_file) == 0
    assert out.read_text() == edited
    message = capsys.readouterr().out
    assert "edited by hand" in message and "--force" in message

    assert render(out, overrides_file, "--force") == 0
    assert load_spec(out).train_config.n_epochs == 5
    assert "--force" in capsys.readouterr().out
    assert render(out, overrides_file) == 0  # the forced file is ours again
    assert "wrote" in capsys.readouterr().out


def test_render_warns_about_problems_in_a_kept_file(tmp_path, overrides_file, capsys):
    out = tmp_path / "spec.cfg"
    out.write_text("train_config { n_epochs: 3 }\n")  # exists, never rendered: the user's own
    assert render(out, overrides_file) == 0
    assert out.read_text() == "train_config { n_epochs: 3 }\n"
    assert "warning: " in capsys.readouterr().err


def test_render_adopts_an_identical_file_without_hash(tmp_path):
    out = tmp_path / "spec.cfg"
    text = "model_config {\n}\n"
    out.write_text(text)  # e.g. a crash between writing the file and its hash
    assert write_rendered(out, text) == "written"
    assert (tmp_path / "spec.cfg.sha256").exists()


def test_render_refuses_an_invalid_result_and_writes_nothing(tmp_path, capsys):
    overrides = tmp_path / "o.yaml"
    overrides.write_text("train_config: {n_epochs: 0}\n")
    out = tmp_path / "spec.cfg"
    assert render(out, overrides) == 1
    assert "train_config.n_epochs must be > 0 (got 0)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        ("train_config: {n_epoch: 3}\n", "unknown override key 'train_config.n_epoch'"),
        ("train_config: [1, 2]\n", "must be a mapping"),
        ("- 1\n", "must be a YAML/JSON mapping"),
        ("a: [\n", "is not valid YAML"),
    ],
    ids=["unknown key", "list section", "list document", "bad yaml"],
)
def test_render_reports_bad_overrides_files(tmp_path, capsys, content, expected):
    overrides = tmp_path / "o.yaml"
    overrides.write_text(content)
    assert render(tmp_path / "spec.cfg", overrides) == 1
    err = capsys.readouterr().err
    assert str(overrides) in err and expected in err


def test_render_from_a_base_file_without_overrides(tmp_path):
    out = tmp_path / "spec.cfg"
    base = shipped_file("specs/classification_spec.cfg")
    assert spec_cli("render", "--base", base, "--out", out) == 0
    assert load_spec(out) == default_spec()


def test_validate_command_through_the_tao_kfp_entry_point(tmp_path, capsys):
    good = shipped_file("specs/classification_spec.cfg")
    assert cli.main(["spec", "validate", str(good), "--task", "evaluate"]) == 0
    bad = tmp_path / "bad.cfg"
    bad.write_text(dump_spec(apply_overrides(default_spec(), {"train_config.n_epochs": 0})))
    assert spec_cli("validate", bad) == 1
    err = capsys.readouterr().err
    assert f"{bad} is not valid for the train task" in err
    assert "train_config.n_epochs must be > 0 (got 0)" in err
    broken = tmp_path / "broken.cfg"
    broken.write_text("model_config {\n  archh: 'resnet'\n}\n")
    assert spec_cli("validate", broken) == 1
    assert f"{broken}:2:" in capsys.readouterr().err


def test_shipped_spec_equals_the_notebook_spec_except_placeholder_paths():
    notebook = load_spec(Path(__file__).parent / "data" / "tao_voc_notebook_spec.cfg")
    shipped = default_spec()
    paths = {
        "train_config.train_dataset_path": shipped.train_config.train_dataset_path,
        "train_config.val_dataset_path": shipped.train_config.val_dataset_path,
        "train_config.pretrained_model_path": shipped.train_config.pretrained_model_path,
        "eval_config.eval_dataset_path": shipped.eval_config.eval_dataset_path,
        "eval_config.model_path": shipped.eval_config.model_path,
    }
    assert apply_overrides(notebook, paths) == shipped
    assert validate_spec(notebook, "evaluate") == []


@pytest.mark.parametrize(
    "size, mean, ok",
    [
        ("3,224,224", {"r": 1, "g": 2, "b": 3}, True),
        ("3,224,224", {"r": 1, "g": 2, "b": 3, "l": 4}, True),  # extra keys are ignored by TAO
        ("3,224,224", {"l": 117.3786}, False),
        ("1,224,224", {"l": 117.3786}, True),
        ("1,224,224", {"r": 1, "g": 2, "b": 3}, False),
    ],
)
def test_image_mean_keys_follow_the_channel_count(size, mean, ok):
    overrides = {"model_config.input_image_size": size, "train_config.image_mean": mean}
    problems = validate_spec(apply_overrides(default_spec(), overrides), "train")
    assert (problems == []) is ok, problems
