"""The shipped pipeline, adapted for a laptop, run end to end with kfp.local on the CPU backend.

This is `make demo` with fewer epochs: the same package, adapt path, components and parsers as
on a cluster. It asserts on what every step produced, on disk and in the KFP outputs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from tao_kfp import cli, local_run

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


# The demo through the command line a user types, with every model option away from its default.
IMAGE_SIZE = 24
CLI_OPTIONS = [
    "--epochs", "4", "--retrain-epochs", "3", "--image-size", str(IMAGE_SIZE),
    "--batch-size", "32", "--learning-rate", "0.04",
    "--spec-overrides", "{train_config: {label_smoothing: 0.05}}",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("demo")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["run-local", "--output", str(out), *CLI_OPTIONS])
    from kfp.local import config

    config.LocalExecutionConfig.instance = None
    assert code == 0, stdout.getvalue()[-3000:]
    summary = local_run.LocalRunSummary(**_summary_fields(out))
    return out, summary, stdout.getvalue()


def _summary_fields(out: Path) -> dict:
    written = json.loads((out / "summary.json").read_text())
    written.pop("orchestration_seconds")
    return written


def test_every_step_succeeds_and_is_timed(demo_run):
    _, summary, _ = demo_run
    assert summary.status == "SUCCESS"
    assert {step["task"] for step in summary.steps} == ALL_STEPS
    assert all(step["status"] == "SUCCESS" and step["seconds"] >= 0 for step in summary.steps)
    assert 0 < summary.backend_seconds < summary.pipeline_seconds


def test_accuracy_and_pruning_figures(demo_run):
    _, summary, _ = demo_run
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
    _, summary, _ = demo_run
    evaluate = summary.metrics["evaluate"]
    assert {"top1_accuracy", "top3_accuracy", "loss", "0_precision", "9_f1"} <= set(evaluate)
    assert summary.metrics["train"]["epochs"] == 4
    assert summary.metrics["retrain"]["epochs"] == 3
    assert summary.metrics["export-int8"]["calibration_batches"] >= 1


def test_files_each_step_wrote(demo_run):
    out, _, _ = demo_run
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    train = run_dir / "train"
    # run-local keeps the last and the best checkpoint (by val_acc) of each training.
    for folder, epochs in ((train, 4), (run_dir / "retrain", 3)):
        rows = (folder / "training.csv").read_text().splitlines()[1:]
        val_acc = [float(row.split(",")[4]) for row in rows]
        best = val_acc.index(max(val_acc)) + 1
        kept = sorted(p.name for p in (folder / "weights").iterdir())
        assert kept == sorted({f"resnet_{best:03d}.tlt", f"resnet_{epochs:03d}.tlt"})
    assert json.loads((train / "classmap.json").read_text()) == {str(d): d for d in range(10)}
    header = (train / "training.csv").read_text().splitlines()[0]
    assert header == "epoch,acc,loss,lr,val_acc,val_loss"
    assert (run_dir / "prune" / "pruned_model.tlt").is_file()
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
    out, summary, _ = demo_run
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    assert Path(summary.final_model).is_file()
    executor_output = next((out / "pipeline-root").glob("*/retrain/executor_output.json"))
    (model,) = json.loads(executor_output.read_text())["artifacts"]["model"]["artifacts"]
    assert model["metadata"]["arch"] == "resnet"
    assert model["metadata"]["workspace_path"] == str(
        run_dir / "retrain" / "weights" / "resnet_003.tlt"
    )


def test_summary_names_the_dataset_and_the_disk_used(demo_run):
    out, summary, printed = demo_run
    digits = out / "workspace" / "data" / f"digits-{IMAGE_SIZE}px"
    assert summary.dataset == {"path": str(digits), "classes": [str(d) for d in range(10)]}
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    assert summary.experiment_dir == str(run_dir)
    on_disk = sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file()) / 1e6
    assert on_disk <= summary.disk_mb < on_disk + 50  # plus the kfp outputs, minus hard links
    assert f"dataset : {digits}" in printed and "pruning ratio" in printed
    assert f"disk left by this run: {summary.disk_mb:.1f} MB" in printed


def test_run_local_options_reach_the_model(demo_run):
    """--image-size, --batch-size, --learning-rate and --spec-overrides set the rendered spec."""
    import onnx
    from PIL import Image

    from tao_kfp import spec as specs

    out, _, _ = demo_run
    (run_dir,) = (out / "workspace" / "experiments").iterdir()
    train = specs.load_spec(run_dir / "specs" / "train.cfg")
    assert train.model_config.input_image_size == f"3,{IMAGE_SIZE},{IMAGE_SIZE}"
    assert train.train_config.batch_size_per_gpu == 32
    assert train.train_config.lr_config.step.learning_rate == pytest.approx(0.04)
    assert train.train_config.label_smoothing == pytest.approx(0.05)
    assert train.train_config.disable_horizontal_flip  # the demo's other overrides are kept
    # Evaluation sees what training saw: no crop on either side.
    assert not train.train_config.enable_center_crop and not train.eval_config.enable_center_crop
    exported = onnx.load(str(run_dir / "export" / "model_fp32.etlt"))
    dims = [d.dim_value for d in exported.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == [3, IMAGE_SIZE, IMAGE_SIZE]
    sample = next((out / "workspace" / "data" / f"digits-{IMAGE_SIZE}px" / "test").rglob("*.png"))
    assert Image.open(sample).size == (IMAGE_SIZE, IMAGE_SIZE)


def test_run_local_help_gives_every_option_a_help_and_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run-local", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--output", "--dataset", "--image-size", "--epochs", "--retrain-epochs", "--batch-size",
        "--learning-rate", "--prune-threshold", "--spec-overrides", "--keep-checkpoints",
    ):  # fmt: skip
        assert option in text
    assert text.count("(default:") >= 10


def test_the_report_shows_the_model(demo_run):
    out, summary, _ = demo_run
    page = (out / "report.html").read_text()
    for heading in (
        "Pruning trade-off", "Test-set scores before and after pruning", "Training curves",
        "Sample test images", "Files of this run",
    ):  # fmt: skip
        assert heading in page
    assert page.count('src="data:image/png;base64,') >= 3 + 1  # 2 heat maps, curves, samples
    assert "precision before" in page and "F1 after" in page
    assert "mean latency" in page and "images/s" in page
    assert "same FP32 graph" in page  # why the INT8 export is as large as the FP32 one
    assert summary.experiment_dir in page


def test_every_link_in_the_report_opens_as_what_it_is(demo_run):
    out, _, _ = demo_run
    page = (out / "report.html").read_text()
    links = [unquote(urlparse(href).path) for href in re.findall(r'href="([^"]+)"', page)]
    assert len(links) >= 6
    for target in map(Path, links):
        assert target.exists(), target
        if target.is_dir():
            continue
        data = target.read_bytes()
        if target.suffix == ".json":
            json.loads(data)
        elif target.suffix == ".csv":
            rows = list(csv.reader(io.StringIO(data.decode())))
            assert rows and len({len(r) for r in rows}) == 1, target
        else:
            pytest.fail(f"the report links {target}, a file a browser cannot show")


def test_the_report_renders_in_headless_chromium(demo_run, tmp_path):
    """A real browser draws the page: heat maps, curves and thumbnails give it many colours."""
    import subprocess

    from PIL import Image

    if not shutil.which("chromium"):
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    out, _, _ = demo_run
    png = tmp_path / "report.png"
    script = Path(__file__).parents[2] / "hack" / "screenshot-report.sh"
    subprocess.run([script, out / "report.html", png], check=True, timeout=120)
    with Image.open(png) as screenshot:
        assert screenshot.size == (1400, 4200)
        colours = screenshot.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 1000


def _dataset(root: Path, classes=("cat", "dog"), per_split=None) -> Path:
    """A tiny class-folder dataset of PNGs (the validate step's minimum counts and more)."""
    from PIL import Image

    per_split = per_split or {"train": 40, "val": 2, "test": 2}
    for split, count in per_split.items():
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.new("RGB", (8, 8), (40 * index, i, 0)).save(folder / f"{i:03d}.png")
    return root


def test_a_second_dataset_with_the_same_folder_name_is_the_one_used(tmp_path):
    first = _dataset(tmp_path / "a" / "pets", per_split={"train": 40, "val": 2})  # no test/
    second = _dataset(tmp_path / "b" / "pets", classes=("ant", "bee", "fly"),
                      per_split={"train": 40, "test": 2})  # fmt: skip
    out = tmp_path / "out"
    one = local_run.run_local(out, dataset=first)
    two = local_run.run_local(out, dataset=second)
    assert (one.dataset["path"], two.dataset["path"]) == (str(first), str(second))
    assert two.dataset["classes"] == ["ant", "bee", "fly"]
    assert "lacks test/" in one.error
    assert "lacks val/" in two.error and "lacks test/" not in two.error  # it read the second


def test_a_dataset_path_that_does_not_exist_is_named(tmp_path, capsys):
    out = tmp_path / "out"
    missing = tmp_path / "elsewhere" / "pets"
    local_run.link_dataset(out / "workspace", _dataset(tmp_path / "pets"))
    assert cli.main(["run-local", "--output", str(out), "--dataset", str(missing)]) == 2
    error = capsys.readouterr().err
    assert f"--dataset {missing}" in error and "is not a folder" in error


def test_an_output_folder_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "out"  # under a file: no user can create it, root included
    assert cli.main(["run-local", "--output", str(out), "--dataset", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"--output {out}" in error and "Traceback" not in error


def test_a_dataset_folder_name_tao_cannot_carry_gets_a_link_it_can(tmp_path):
    """Paths built on the link reach TAO commands; the launcher re-splits them (issue 19)."""
    from tao_kfp.tao import launcher_safe

    workspace = tmp_path / "out" / "workspace"
    relative = local_run.link_dataset(workspace, _dataset(tmp_path / "my pets (it's)"))
    assert launcher_safe(str(workspace / relative)) and relative.startswith("data/my_pets__it_s_-")
    assert (workspace / relative / "train").is_dir()


def test_an_output_folder_tao_cannot_carry_is_refused_before_any_step(tmp_path, capsys):
    out = tmp_path / "my runs"
    assert cli.main(["run-local", "--output", str(out), "--dataset", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"--output {out}" in error and "bash -c" in error and "Traceback" not in error
    assert not out.exists()


def test_a_corrupt_test_image_stops_the_run_at_its_first_step(tmp_path):
    root = _dataset(tmp_path / "pets")
    good = (root / "test" / "dog" / "001.png").read_bytes()
    corrupt = root / "test" / "dog" / "002.png"
    corrupt.write_bytes(good[: len(good) // 2])  # truncated, as an interrupted copy leaves it
    summary = local_run.run_local(tmp_path / "out", dataset=root)
    assert [(s["task"], s["status"]) for s in summary.steps] == [("validate-inputs", "FAILURE")]
    assert summary.failed_step == "validate-inputs"
    assert "1 unreadable image(s)" in summary.error and "002.png" in summary.error


def test_a_dataset_error_names_the_folder_the_user_gave(tmp_path):
    root = _dataset(tmp_path / "pets")
    shutil.rmtree(root / "val" / "dog")
    summary = local_run.run_local(tmp_path / "out", dataset=root)
    assert summary.failed_step == "validate-inputs"
    assert f"{root / 'val'} lacks class folders ['dog']" in summary.error
    assert "workspace/data" not in summary.error
    assert str(root / "val") in (tmp_path / "out" / "report.html").read_text()


def test_a_failed_run_after_a_successful_one_reports_only_itself(demo_run, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(demo_run[0], out, symlinks=True)  # a folder a successful run left
    bad = _dataset(tmp_path / "pets", per_split={"train": 40, "val": 2})
    summary = local_run.run_local(out, dataset=bad)

    written = json.loads((out / "summary.json").read_text())
    assert written["status"] == "FAILURE" and written["failed_step"] == "validate-inputs"
    assert written["metrics"] == {} and written["model_sizes_mb"] == {}
    assert written["accuracy_before_pruning"] is None and written["final_model"] is None
    assert written["error"].startswith("tao_kfp.steps.validate.InputError: 1 problem(s)")
    assert "Traceback" not in written["error"]
    assert len(written["error"].splitlines()) <= local_run.ERROR_LINES
    printed = local_run.format_summary(summary)
    assert "top-1 accuracy" not in printed and "lacks test/" in printed
    page = (out / "report.html").read_text()
    assert "Failed at step validate-inputs" in page and "lacks test/" in page
    assert "Pruning trade-off" not in page and "pipeline-root" not in page


@pytest.mark.parametrize(
    ("user", "center_crop_in_evaluation"),
    [
        (None, False),  # the demo trains on whole images
        ({"train_config": {"enable_random_crop": True}}, True),
        ({"train_config": {"enable_center_crop": True}}, True),
        (
            {
                "train_config": {"enable_random_crop": True},
                "eval_config": {"enable_center_crop": False},
            },
            False,
        ),  # the user's own choice stands
    ],
)
def test_evaluation_crops_as_training_does(user, center_crop_in_evaluation):
    overrides = local_run.run_spec_overrides(32, user)
    assert overrides["eval_config"]["enable_center_crop"] is center_crop_in_evaluation
    assert overrides["eval_config"]["top_k"] == 3 and overrides["model_config"]["n_layers"] == 10


def test_a_step_that_wrote_no_outputs_is_not_a_success():
    """kfp.local's DockerRunner reports SUCCESS for a container removed before its exit status
    is read (kfp/local/docker_task_handler.py:143-160): such a step is a failure here."""
    from tao_kfp.local_run import _silent_successes
    from tao_kfp.package import load_package
    from tao_kfp.resources import shipped_file

    spec = load_package(shipped_file("pipelines/tao-classification.yaml"))[0]
    steps = [
        {"task": "train", "status": "SUCCESS"},
        {"task": "evaluate", "status": "SUCCESS"},
        {"task": "prune", "status": "FAILURE"},
    ]
    outputs = {"train": {"parameters": {}, "artifacts": {}}}
    assert _silent_successes(spec, steps, outputs) == {"evaluate"}


@pytest.mark.parametrize(
    ("fp32_export", "shown", "not_shown"),
    [
        ("/ws/export/model_fp32.etlt", ["FP32 (.etlt)", "INT8 (.etlt)", "same FP32 graph"], []),
        (
            "/ws/export/model_fp32.onnx",  # TAO 5: one ONNX export, the engine is INT8
            ["FP32 (.onnx)", "gen_trt_engine"],
            [".etlt", "INT8 ONNX export", "same FP32 graph"],
        ),
    ],
)
def test_the_report_names_the_export_files_of_each_tao_route(fp32_export, shown, not_shown):
    from tao_kfp.local_report import trade_off_table

    summary = local_run.LocalRunSummary(
        status="SUCCESS", output_dir="/out", pipeline_seconds=1.0, backend_seconds=1.0,
        model_sizes_mb={"exported_fp32": 19.5, "engine_int8": 4.9},
    )  # fmt: skip
    page = trade_off_table(summary, None, fp32_export)
    for text in shown:
        assert text in page
    for text in not_shown:
        assert text not in page


def test_a_one_epoch_retraining_is_visible_in_the_training_curves(tmp_path, monkeypatch):
    from tao_kfp import local_report

    header = "epoch,acc,loss,lr,val_acc,val_loss\n"
    for name, epochs in (("train", 2), ("retrain", 1)):  # run-local --retrain-epochs 1
        (tmp_path / name).mkdir()
        rows = "".join(
            f"{e},0.{e}5,0.{9 - e},0.01,0.{e}4,0.{8 - e}\n" for e in range(1, epochs + 1)
        )
        (tmp_path / name / "training.csv").write_text(header + rows)
    figures = []
    monkeypatch.setattr(local_report, "_png", lambda figure: figures.append(figure) or "")
    local_report.training_curves(tmp_path)
    lines = [line for axes in figures[0].axes for line in axes.get_lines()]
    retrain = [line for line in lines if line.get_label().startswith("retrain")]
    assert len(retrain) == 4
    for line in retrain:  # one point: drawn only as a marker
        assert line.get_marker() not in (None, "None", "", " ")


def test_class_names_with_dollar_signs_are_drawn_as_written(monkeypatch):
    from matplotlib import cbook

    from tao_kfp import local_report

    names = ["cost $5 to $9", r"x $\frac$", "a__b 2"]  # folder names, not math
    figures = []
    monkeypatch.setattr(local_report, "_png", lambda figure: figures.append(figure) or "")
    evaluation = local_report.Evaluation(names, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    local_report.confusion_heatmap(evaluation, "before pruning")
    figures[0].canvas.draw()  # mathtext would misdraw the first name and fail on the second
    axes = figures[0].axes[0]
    for labels in (axes.get_xticklabels(), axes.get_yticklabels()):
        assert [label.get_text().replace("\\$", "$") for label in labels] == names
        assert not any(cbook.is_math_text(label.get_text()) for label in labels)
