"""The CPU backend speaks TAO 3.x's CLI and writes/prints what the pipeline parses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cpu_backend_helpers import CLASSES, EPOCHS, KEY

from tao_kfp import parsers

LOG_PREFIX = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] "


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


def test_train_writes_tao_files(chain):
    results = chain.outputs["results"]
    weights = sorted(p.name for p in (results / "weights").iterdir())
    assert weights == [f"resnet_{epoch:03d}.tlt" for epoch in range(1, EPOCHS + 1)]

    classmap_text = (results / "classmap.json").read_text()
    assert "\n" not in classmap_text  # no indentation, like Keras' json.dumps
    assert json.loads(classmap_text) == {f"digit_{i}": i for i in range(CLASSES)}

    csv_text = (results / "training.csv").read_text().splitlines()
    assert csv_text[0] == "epoch,acc,loss,lr,val_acc,val_loss"
    rows = parsers.read_training_csv(results / "training.csv")
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    assert all(0.0 <= row["val_acc"] <= 1.0 and row["lr"] > 0 for row in rows)


def test_train_prints_keras_progress_and_tao_summary(chain):
    out = chain.outputs["train_stdout"]
    found = re.findall(r"^Found (\d+) images belonging to (\d+) classes\.$", out, re.M)
    assert found == [(str(70 * CLASSES), str(CLASSES)), (str(10 * CLASSES), str(CLASSES))]
    assert re.search(rf"^Epoch 1/{EPOCHS}$", out, re.M)
    progress = r"^\d+/\d+ \[=+\] - \d+s \d+ms/step - loss: [\d.]+ - acc: [\d.]+ - val_loss: [\d.]+ - val_acc: [\d.]+$"  # noqa: E501
    assert len(re.findall(progress, out, re.M)) == EPOCHS
    for message in ("Total Val Loss: ", "Total Val accuracy: ", "Training finished successfully."):
        assert re.search(LOG_PREFIX + r"__main__: " + re.escape(message), out, re.M), message

    summary = parsers.parse_train_output(out)
    last = parsers.read_training_csv(chain.outputs["results"] / "training.csv")[-1]
    assert (summary.epochs_completed, summary.total_epochs) == (EPOCHS, EPOCHS)
    assert summary.val_accuracy == pytest.approx(last["val_acc"])
    assert summary.val_accuracy >= 0.8  # a real model learned the digits


def test_resume_with_init_epoch_runs_the_remaining_epochs(chain, cli, tmp_path):
    last_but_one = chain.outputs["results"] / "weights" / f"resnet_{EPOCHS - 1:03d}.tlt"
    spec = chain.spec("resume.cfg", pretrained=str(last_but_one))
    code, out, err = cli(["train", "-e", spec, "-r", tmp_path, "-k", KEY, "--init_epoch", EPOCHS])
    assert code == 0, err
    assert re.findall(r"^Epoch (\d+)/", out, re.M) == [str(EPOCHS)]
    assert [p.name for p in (tmp_path / "weights").iterdir()] == [f"resnet_{EPOCHS:03d}.tlt"]
    assert [row["epoch"] for row in parsers.read_training_csv(tmp_path / "training.csv")] == [
        EPOCHS
    ]


def test_keras_hdf5_pretrained_model_is_refused_clearly(chain, cli, tmp_path):
    hdf5 = tmp_path / "resnet_18.hdf5"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    spec = chain.spec("hdf5.cfg", pretrained=str(hdf5))
    code, _out, err = cli(["train", "-e", spec, "-r", tmp_path / "results", "-k", KEY])
    assert code == 1
    assert "Keras HDF5" in err and "train from scratch" in err


def test_learning_rate_schedules_follow_tao_formulas():
    from tao_kfp.cpu_backend.train import learning_rate
    from tao_kfp.spec import parse_spec

    def lr_config(text):
        return parse_spec(f"train_config {{ lr_config {{ {text} }} }}").train_config.lr_config

    step = lr_config("step { learning_rate: 0.1 step_size: 10 gamma: 0.1 }")
    # TAO's StepLRScheduler decays smoothly: gamma ** (step / (step_size% of max iterations)).
    assert learning_rate(step, 0, 1000) == pytest.approx(0.1)
    assert learning_rate(step, 100, 1000) == pytest.approx(0.01, rel=1e-5)
    assert learning_rate(step, 50, 1000) == pytest.approx(0.1 * 0.1**0.5, rel=1e-5)

    soft = lr_config(
        "soft_anneal { learning_rate: 0.01 soft_start: 0.1 annealing_divider: 10 "
        "annealing_points: 0.5 annealing_points: 0.8 }"
    )
    assert learning_rate(soft, 0, 100) == pytest.approx(3e-4)  # fixed start_lr
    assert learning_rate(soft, 30, 100) == pytest.approx(0.01)
    assert learning_rate(soft, 60, 100) == pytest.approx(0.001)
    assert learning_rate(soft, 90, 100) == pytest.approx(0.0001)

    cosine = lr_config("cosine { learning_rate: 0.1 min_lr_ratio: 0.01 soft_start: 0.0 }")
    assert learning_rate(cosine, 0, 100) == pytest.approx(0.1)
    assert learning_rate(cosine, 50, 100) == pytest.approx(0.001 + 0.099 / 2, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def test_evaluate_prints_tao_layout(chain, cli):
    code, out, err = cli(
        ["evaluate", "-e", chain.outputs["spec"], "-k", KEY, "-m", "/ignored/model.tlt"]
    )
    assert code == 0, err
    result = parsers.parse_evaluate_output(out)
    assert result.class_names == [f"digit_{i}" for i in range(CLASSES)]
    assert sum(map(sum, result.confusion_matrix)) == 20 * CLASSES
    assert result.top1_accuracy >= 0.8
    assert result.top_k_accuracy >= result.top1_accuracy  # top_k: 2 in the spec
    assert result.per_class["digit_0"].support == 20

    # The order TAO prints in (reference section 5).
    expected = [
        r"^Total params: [\d,]+$",
        r"^Found 100 images belonging to 5 classes\.$",
        LOG_PREFIX + r"__main__: Processing dataset \(evaluation\): .*/test$",
        r"^Evaluation Loss: [\d.e-]+$",
        r"^Evaluation Top K accuracy: [\d.]+$",
        r"^Found 100 images belonging to 5 classes\.$",
        LOG_PREFIX + r"__main__: Calculating per-class P/R and confusion matrix\. It may take",
        r"^Confusion Matrix$",
        r"^Classification Report$",
        r"^\s+accuracy\s+[\d.]+\s+100$",
    ]
    position = 0
    for pattern in expected:
        match = re.compile(pattern, re.M).search(out, position)
        assert match, f"{pattern!r} missing after position {position}"
        position = match.end()


def test_wrong_key_fails_without_echoing_keys(chain, cli):
    code, out, err = cli(["evaluate", "-e", chain.outputs["spec"], "-k", "not-the-key"])
    assert code == 1
    assert "wrong key" in err and str(chain.outputs["model"]) in err
    assert "not-the-key" not in out + err and KEY not in out + err


# ---------------------------------------------------------------------------------------------
# prune
# ---------------------------------------------------------------------------------------------


def test_prune_makes_a_smaller_model_and_logs_the_ratio(chain, pruned):
    from tao_kfp.cpu_backend.checkpoint import load_checkpoint
    from tao_kfp.cpu_backend.model import count_params

    out = chain.outputs["prune_stdout"]
    assert re.search(LOG_PREFIX + r"iva\.common\.magnet_prune: Pruning ratio", out, re.M)
    ratio = parsers.parse_prune_output(out)
    original = load_checkpoint(chain.outputs["model"], KEY).build_model()
    smaller = load_checkpoint(pruned, KEY).build_model()
    assert count_params(smaller)[0] < count_params(original)[0]
    assert ratio == pytest.approx(count_params(smaller)[0] / count_params(original)[0])
    assert all(width % 8 == 0 for width in smaller.arch["widths"].values())  # -pg 8


@pytest.mark.parametrize(
    "criterion", ["union", "intersection", "arithmetic_mean", "geometric_mean"]
)
def test_residual_additions_keep_one_channel_set(criterion):
    import torch

    from tao_kfp.cpu_backend.model import ResNet, default_arch
    from tao_kfp.cpu_backend.prune import prune_model, residual_groups

    torch.manual_seed(0)
    # resnet18 without all_projections: identity shortcuts chain block_Xa and block_Xb.
    arch = default_arch(n_layers=18, input_shape=(3, 32, 32), num_classes=4)
    model = ResNet(arch).eval()
    with torch.no_grad():  # spread the BatchNorm scales so some filters fall under 0.5
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.05, 1.0)
    groups = {frozenset(group) for group in residual_groups(arch)}
    assert frozenset({"block_1a_conv_2", "block_1a_conv_shortcut", "block_1b_conv_2"}) in groups

    smaller, kept = prune_model(
        model, threshold=0.5, criterion=criterion, excluded=["block_4a_conv_1"]
    )
    for group in groups:
        assert len({tuple(kept[name]) for name in group}) == 1, sorted(group)
    assert len(kept["block_4a_conv_1"]) == 512  # -el keeps every filter
    assert smaller.arch["widths"]["block_1a_conv_1"] < 64
    assert smaller(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_prune_with_zero_threshold_keeps_the_function():
    import torch

    from tao_kfp.cpu_backend.model import ResNet, default_arch
    from tao_kfp.cpu_backend.prune import prune_model

    torch.manual_seed(1)
    model = ResNet(default_arch(n_layers=10, input_shape=(1, 16, 16), num_classes=3)).eval()
    same, _kept = prune_model(model, threshold=0.0)
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(same(x), model(x))


def test_retrain_rebuilds_the_pruned_network(chain, pruned, cli):
    from tao_kfp.cpu_backend.checkpoint import load_checkpoint

    results = chain.work / "retrain"
    model = results / "weights" / "resnet_002.tlt"
    spec = chain.spec("retrain.cfg", pretrained=str(pruned), model=str(model), epochs=2)
    code, out, err = cli(["train", "-e", spec, "-r", results, "-k", KEY])
    assert code == 0, err
    assert "Loaded pruned model" in out
    assert load_checkpoint(model, KEY).arch["widths"] == load_checkpoint(pruned, KEY).arch["widths"]

    code, out, err = cli(["evaluate", "-e", spec, "-k", KEY])
    assert code == 0, err
    assert parsers.parse_evaluate_output(out).top1_accuracy >= 0.8


# ---------------------------------------------------------------------------------------------
# inference
# ---------------------------------------------------------------------------------------------


def test_inference_single_image(chain, cli):
    image = sorted((chain.root / "digits" / "test" / "digit_3").iterdir())[0]
    code, out, err = cli(
        [
            "inference", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
            "-i", image, "-cm", chain.outputs["results"] / "classmap.json",
        ]
    )  # fmt: skip
    assert code == 0, err
    predictions = re.search(r"^Current predictions: \[\[(.*?)\]\]$", out, re.M | re.S)
    probabilities = [float(v) for v in predictions[1].split()]
    assert len(probabilities) == CLASSES and sum(probabilities) == pytest.approx(1.0, abs=1e-4)
    label = int(re.search(r"^Class label = (\d+)$", out, re.M)[1])
    assert label == int(np.argmax(probabilities))
    assert re.search(rf"^Class name = digit_{label}$", out, re.M)


def test_inference_directory_writes_result_csv(chain, cli, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(chain.root / "digits" / "test" / "digit_1", folder)
    shutil.copy(next(folder.iterdir()), folder / "UPPER.PNG")  # case-insensitive extension
    (folder / "nested").mkdir()  # TAO 3.x reads only the top level
    shutil.copy(next(folder.glob("*.png")), folder / "nested" / "skip.png")
    (folder / "notes.bmp").write_bytes(b"not used by inference")
    expected = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")

    code, out, err = cli(
        [
            "inference", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
            "-cm", chain.outputs["results"] / "classmap.json",
            "-d", str(folder), "-b", 8,
        ]
    )  # fmt: skip
    assert code == 0, err
    assert re.search(
        LOG_PREFIX + rf"__main__: Inference complete\. Result is saved at {folder}/result\.csv$",
        out,
        re.M,
    )
    assert not (folder / "result.csv").read_text().startswith("image")  # no header
    rows = parsers.read_inference_csv(folder / "result.csv")
    assert [row.image for row in rows] == [os.path.join(str(folder), name) for name in expected]
    assert all(0.0 < row.confidence <= 1.0 for row in rows)
    assert sum(row.label == "digit_1" for row in rows) >= 0.8 * len(rows)


# ---------------------------------------------------------------------------------------------
# calibration_tensorfile, export, converter
# ---------------------------------------------------------------------------------------------


def test_calibration_tensorfile(chain, calibration_file, cli):
    from tao_kfp.cpu_backend.data import read_tensorfile

    batches = read_tensorfile(calibration_file)
    assert batches.shape == (3, 32, 3, 16, 16) and batches.dtype == np.float32

    code, _out, err = cli(
        ["calibration_tensorfile", "-e", chain.outputs["spec"], "-o", calibration_file]
    )
    assert code == 1 and "already exists" in err
    code, _out, err = cli(
        ["calibration_tensorfile", "-e", chain.outputs["spec"], "-o", chain.work / "x", "-m", 99]
    )
    assert code == 1 and "must be between 1 and 10" in err  # 350 images // 32


def test_export_fp32_is_onnx_matching_torch(chain, test_images, cli):
    import onnx
    import onnxruntime as ort
    import torch

    from tao_kfp.cpu_backend.checkpoint import load_checkpoint

    etlt = chain.work / "export" / "fp32.etlt"
    args = ["export", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"]]
    code, out, err = cli([*args, "-o", etlt])
    assert code == 0, err
    for line in ("Using input nodes: ['input_1']", "Using output nodes: ['predictions/Softmax']"):
        assert line in out.splitlines()
    assert parsers.parse_export_output(out) == str(etlt)

    graph = onnx.load(str(etlt))
    onnx.checker.check_model(graph)
    assert [i.name for i in graph.graph.input] == ["input_1"]
    assert [o.name for o in graph.graph.output] == ["predictions/Softmax"]
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch

    images, _labels = test_images
    session = ort.InferenceSession(str(etlt), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {"input_1": images})[0]
    model = load_checkpoint(chain.outputs["model"], KEY).build_model()
    with torch.no_grad():
        torch_probs = torch.softmax(model(torch.from_numpy(images)), dim=1).numpy()
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)

    code, _out, err = cli([*args, "-o", etlt])
    assert code == 1 and "already exists" in err


def test_export_engine_file_and_deepstream_config(chain, cli, tmp_path):
    etlt, engine = tmp_path / "model.etlt", tmp_path / "model.engine"
    code, _out, err = cli(
        [
            "export", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
            "-o", etlt, "--engine_file", engine, "--max_batch_size", 4, "--gen_ds_config",
            "--classmap_json", chain.outputs["results"] / "classmap.json",
        ]
    )  # fmt: skip
    assert code == 0, err
    assert etlt.is_file() and engine.is_file()
    labels = (tmp_path / "labels.txt").read_text().splitlines()
    assert labels == [f"digit_{i}" for i in range(CLASSES)]
    config = (tmp_path / "nvinfer_config.txt").read_text()
    assert "infer-dims=3;16;16" in config and "network-type=1" in config
    assert KEY not in config  # the key is never written to disk


def test_int8_export_writes_calibration_cache(int8_export):
    out = int8_export["stdout"]
    assert "Calibration takes time especially if number of batches is large." in out
    cache = json.loads(int8_export["cache"].read_text())
    ranges = cache["data"]
    assert "input_1" in ranges and len(ranges) > 10  # a range per calibrated tensor
    assert oct(int8_export["cache"].stat().st_mode & 0o044) != "0o0"  # readable by the group


def test_converter_int8_engine_agrees_with_fp32(chain, int8_export, test_images, cli):
    import onnx
    import onnxruntime as ort

    engine = chain.work / "engines" / "model.int8.trt"
    code, out, err = cli(
        [
            "converter", int8_export["etlt"], "-k", KEY, "-c", int8_export["cache"],
            "-o", "predictions/Softmax", "-d", "3,16,16", "-i", "nchw", "-m", 16, "-t", "int8",
            "-e", engine, "-b", 16,
        ]
    )  # fmt: skip
    assert code == 0, err
    assert engine.is_file()
    assert re.search(r"^\[INFO\] Benchmark: batch 16, \d+ runs, mean latency [\d.]+ ms", out, re.M)
    op_types = {node.op_type for node in onnx.load(str(engine)).graph.node}
    assert {"QLinearConv", "QuantizeLinear"} & op_types  # really quantized

    images, _labels = test_images
    fp32 = ort.InferenceSession(str(int8_export["etlt"]), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(engine), providers=["CPUExecutionProvider"])
    expected = fp32.run(None, {"input_1": images})[0].argmax(1)
    got = int8.run(None, {"input_1": images})[0].argmax(1)
    assert (expected == got).mean() >= 0.9


def test_converter_fp16_and_flag_checks(chain, int8_export, cli):
    etlt = int8_export["etlt"]
    engine = chain.work / "engines" / "model.fp16.engine"
    code, _out, err = cli(["converter", etlt, "-k", KEY, "-t", "fp16", "-e", engine, "-m", 4])
    assert code == 0, err
    assert engine.is_file()

    code, _out, err = cli(["converter", etlt, "-k", "other", "-e", chain.work / "x.engine"])
    assert code == 1 and "wrong key" in err
    code, _out, err = cli(["converter", etlt, "-k", KEY, "-d", "3,224,224", "-e", engine])
    assert code == 1 and "-d 3,224,224 does not match" in err
    code, _out, err = cli(["converter", etlt, "-k", KEY, "-t", "int8", "-e", engine])
    assert code == 1 and "calibration cache" in err


# ---------------------------------------------------------------------------------------------
# command line: module and console script, global flags, --log_file
# ---------------------------------------------------------------------------------------------


def test_module_invocation_with_global_flags_and_log_file(chain, tmp_path):
    log_file = tmp_path / "logs" / "calibration.log"
    output = tmp_path / "calibration.tensor"
    command = [
        sys.executable, "-m", "tao_kfp.cpu_backend", "calibration_tensorfile", "--gpus", "2",
        "--gpu_index", "0", "1", "-np", "1", "--log_file", str(log_file),
        "-e", str(chain.outputs["spec"]), "-o", str(output), "-m", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert output.is_file()
    logged = log_file.read_text()
    assert "Writing calibration tensorfile: 100%|" in logged
    assert "Calibration tensorfile written." in logged and "--gpus 2" in logged


def test_console_script_is_installed():
    script = shutil.which("tao-kfp-cpu", path=os.path.dirname(sys.executable))
    assert script, "tao-kfp-cpu missing: reinstall the package (pip install -e .)"
    result = subprocess.run([script, "converter", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("-k", "-c", "-o", "-d", "-i", "-t", "-e", "-m", "-b", "-w", "-p", "-s", "-u"):
        assert re.search(rf"(^|\s|\[){flag}\b", result.stdout), flag


# ---------------------------------------------------------------------------------------------
# data: image modes and preprocessing
# ---------------------------------------------------------------------------------------------


def test_images_of_any_mode_become_the_spec_channels(tmp_path):
    from PIL import Image

    from tao_kfp.cpu_backend.data import ImageFormat

    path = tmp_path / "palette.png"
    Image.new("RGBA", (40, 20), (10, 20, 30, 128)).convert("P").save(path)
    assert ImageFormat(3, 16, 16).load(path).shape == (3, 16, 16)
    assert ImageFormat(1, 16, 16).load(path).shape == (1, 16, 16)
    assert ImageFormat(3, 16, 16).load(path, crop="center").shape == (3, 16, 16)
    assert ImageFormat(3, 16, 16).load(path, crop="random").shape == (3, 19, 19)


def test_preprocess_modes_match_keras():
    from tao_kfp.cpu_backend.data import ImageFormat

    rgb = np.zeros((1, 3, 2, 2), dtype=np.uint8)
    rgb[0, 0] = 200  # red channel
    caffe = ImageFormat(3, 2, 2, mode="caffe").preprocess(rgb).numpy()
    assert caffe[0, 2, 0, 0] == pytest.approx(200 - 123.68)  # BGR order: red is last
    assert caffe[0, 0, 0, 0] == pytest.approx(-103.939)
    custom = ImageFormat(1, 2, 2, mode="caffe", image_mean={"l": 100.0})
    assert custom.preprocess(np.full((1, 1, 2, 2), 100, np.uint8)).abs().max() == 0
    tf = ImageFormat(3, 2, 2, mode="tf").preprocess(rgb).numpy()
    assert tf.min() == pytest.approx(-1.0) and tf.max() == pytest.approx(200 / 127.5 - 1)
    torch_mode = ImageFormat(3, 2, 2, mode="torch").preprocess(rgb).numpy()
    assert torch_mode[0, 1, 0, 0] == pytest.approx(-0.456 / 0.224, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# TAO 5.x mode (--tao-version 5): what 5.x writes, and what it refuses
# ---------------------------------------------------------------------------------------------


def test_tao3_evaluate_and_inference_require_a_key(chain, cli, tmp_path):
    """TAO 3.x evaluate and inference declare -k required (docs/tao-contract.md)."""
    for args in (
        ["evaluate", "-e", chain.outputs["spec"]],
        [
            "inference",
            "-m",
            chain.outputs["model"],
            "-e",
            chain.outputs["spec"],
            "-d",
            tmp_path,
            "-cm",
            chain.outputs["results"] / "classmap.json",
        ],
    ):
        code, _out, err = cli(args)
        assert code == 1 and "requires -k/--key" in err, args


def test_engine_builders_belong_to_their_version(chain, cli, tmp_path):
    code, _out, err = cli(["--tao-version", "5", "converter", "x.onnx"])
    assert code == 2 and "TAO 5 has no converter" in err
    code, _out, err = cli(["gen_trt_engine", "-m", "x", "-e", "s", "-r", str(tmp_path)])
    assert code == 2 and "TAO 3 has no gen_trt_engine" in err


def test_tao5_prune_refuses_an_output_that_is_not_hdf5(chain, cli, tmp_path):
    """5.0 saves to <-o>.hdf5, then reads <-o> (tao_tensorflow1_backend 5.0
    common/magnet_prune.py:231-245): a .tlt path crashes there."""
    output = tmp_path / "pruned.tlt"
    code, _out, err = cli(
        ["--tao-version", "5", "prune", "-m", chain.outputs["model"], "-o", output, "-k", KEY]
    )
    # 255: TAO 5's launcher exits with sys.exit(-1) when the task fails (entrypoint.py:399-401)
    assert code == 255 and "ending in .hdf5" in err and not output.exists()


def test_tao5_export_is_onnx_and_writes_no_cache_without_an_engine(
    chain, calibration_file, cli, tmp_path
):
    """5.0 forces ONNX, and calibrates only when --engine_file is passed
    (tao_tensorflow1_backend 5.0 common/export/app.py:242-244)."""
    output, cache = tmp_path / "model", tmp_path / "cal.bin"
    code, out, err = cli(
        [
            "--tao-version", "5", "export", "-m", chain.outputs["model"], "-k", KEY,
            "-o", output, "-e", chain.outputs["spec"], "--data_type", "int8",
            "--cal_data_file", calibration_file, "--cal_cache_file", cache,
        ]
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "model.onnx").is_file() and not output.exists()
    assert not cache.exists() and "only with --engine_file" in out


def test_gen_trt_engine_requires_model_spec_and_results_dir(cli, tmp_path):
    """tao_deploy 5.0 (a285787) gen_trt_engine.py: -m, -e and -r are required=True
    (100-105, 114-119, 190-196)."""
    code, _out, err = cli(["--tao-version", "5", "gen_trt_engine", "-m", "x.onnx", "-e", "s"])
    assert code == 2 and "-r/--results_dir" in err


def test_gen_trt_engine_refuses_fields_the_deploy_proto_lacks(chain, cli, tmp_path):
    spec = tmp_path / "wandb.cfg"
    spec.write_text(
        chain.outputs["spec"]
        .read_text()
        .replace("random_seed: 42", "random_seed: 42 visualizer { wandb_config { project: 'p' } }")
    )
    code, _out, err = cli(
        ["--tao-version", "5", "gen_trt_engine", "-m", chain.outputs["model"], "-e", spec,
         "-r", tmp_path, "--engine_file", tmp_path / "e.engine"]
    )  # fmt: skip
    assert code == 1 and "train_config.visualizer.wandb_config" in err


def test_gen_trt_engine_builds_an_int8_engine_from_a_tensorfile(
    chain, int8_export, calibration_file, cli, tmp_path
):
    engine, cache = tmp_path / "model.engine", tmp_path / "cal.bin"
    code, out, err = cli(
        [
            "--tao-version", "5", "gen_trt_engine", "-m", int8_export["etlt"],
            "-e", chain.outputs["spec"], "-r", tmp_path, "--data_type", "int8",
            "--cal_data_file", calibration_file, "--cal_cache_file", cache,
            "--batches", 3, "--batch_size", 32, "--max_batch_size", 32, "--engine_file", engine,
        ]
    )  # fmt: skip
    assert code == 0, err
    assert engine.is_file() and json.loads(cache.read_text())["data"]["input_1"]
    assert "Export finished successfully." in out
