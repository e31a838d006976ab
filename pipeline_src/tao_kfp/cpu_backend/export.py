"""``export``: TAO ``classification export`` on CPU (3.x ``.etlt``; 5.x ``.onnx``).

The ``.etlt`` written here is an ONNX model (TAO 3.x writes an encrypted UFF model): input
``input_1`` (N, C, H, W, preprocessed as in training, dynamic batch), output
``predictions/Softmax``. It carries a salted digest of ``-k`` in its metadata so the converter
can reject another key. With ``--data_type int8`` the calibration ranges of every tensor are
computed with ONNX Runtime's MinMax calibrator over the TensorFile batches (or images) and
written to ``--cal_cache_file`` (ONNX Runtime's JSON cache, read back by ``converter -c``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tao_kfp.cpu_backend.common import BackendError, log, refuse_existing, say

INPUT_NAME = "input_1"
OUTPUT_NAME = "predictions/Softmax"
OPSET = 17


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO export flags (3.x set, plus 5.0's accepted)."""
    parser.add_argument("-m", "--model", required=True, help="model file (.tlt)")
    parser.add_argument("-k", "--key", default="", help="model key")
    parser.add_argument("-o", "--output_file", default=None, help="default: <model>.etlt")
    parser.add_argument(
        "-e", "--experiment_spec", "--experiment_spec_file", default=None, help="spec"
    )
    parser.add_argument("--data_type", choices=("fp32", "fp16", "int8"), default="fp32")
    parser.add_argument("--cal_image_dir", default="", help="images for INT8 calibration")
    parser.add_argument("--cal_data_file", default="", help="TensorFile for INT8 calibration")
    parser.add_argument("--cal_cache_file", default="./cal.bin", help="calibration cache out")
    parser.add_argument("--cal_json_file", default="", help="ignored (QAT)")
    parser.add_argument("--batches", type=int, default=10, help="calibration batches")
    parser.add_argument("--batch_size", type=int, default=16, help="calibration batch size")
    parser.add_argument("--max_batch_size", type=int, default=1, help="engine max batch")
    parser.add_argument("--min_batch_size", type=int, default=1, help="ignored")
    parser.add_argument("--opt_batch_size", type=int, default=1, help="ignored")
    parser.add_argument("--static_batch_size", type=int, default=-1, help="ignored")
    parser.add_argument("--max_workspace_size", type=int, default=1 << 30, help="ignored")
    parser.add_argument("--target_opset", type=int, default=None, help="ignored")
    parser.add_argument("--engine_file", default=None, help="also build an engine here")
    parser.add_argument("-s", "--strict_type_constraints", action="store_true", help="ignored")
    parser.add_argument("--force_ptq", action="store_true", help="ignored")
    parser.add_argument("--gen_ds_config", action="store_true", help="write DeepStream files")
    parser.add_argument("--classmap_json", default=None, help="classmap.json (for DeepStream)")
    parser.add_argument("--results_dir", default=None, help="ignored (TAO 5.0 status.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")


def run(args: argparse.Namespace) -> int:
    """Exports ``-m`` to ``-o`` (and a calibration cache for int8); returns 0."""
    from tao_kfp.cpu_backend.checkpoint import load_checkpoint
    from tao_kfp.cpu_backend.common import load_experiment_spec, use_all_cores

    use_all_cores()
    tao5 = args.tao_version == "5"
    output = args.output_file or str(Path(args.model).with_suffix(".onnx" if tao5 else ".etlt"))
    if tao5 and not output.endswith(".onnx"):
        output += ".onnx"  # 5.0 forces ONNX and appends the extension (docs/tao-contract.md)
    output_path = refuse_existing(output, "-o")
    if args.gen_ds_config and not args.classmap_json:
        raise BackendError("--gen_ds_config needs --classmap_json <classmap.json written by train>")
    spec = load_experiment_spec(args.experiment_spec) if args.experiment_spec else None
    checkpoint = load_checkpoint(args.model, args.key)
    model = checkpoint.build_model()
    say("Loaded model")
    say(f"Using input nodes: ['{INPUT_NAME}']")
    say(f"Using output nodes: ['{OUTPUT_NAME}']")
    log(f"Saving exported model to {output_path}")
    export_onnx(model, output_path, key=args.key)

    if args.data_type == "int8" and tao5 and not args.engine_file:
        # 5.0 calibrates only while building an engine (common/export/app.py:242-244).
        log("INT8 calibration runs only with --engine_file in TAO 5.0: no calibration cache")
    elif args.data_type == "int8":
        if spec is None and not args.cal_data_file:
            raise BackendError("--data_type int8 needs -e <spec> or --cal_data_file <TensorFile>")
        log("Calibration takes time especially if number of batches is large.")
        batches = calibration_batches(args, spec)
        write_calibration_cache(output_path, batches, args.cal_cache_file)
        log(f"Calibration cache saved to {args.cal_cache_file}")
    if args.engine_file:
        from tao_kfp.cpu_backend.convert import build_engine

        build_engine(
            output_path,
            Path(args.engine_file),
            data_type=args.data_type,
            cache=args.cal_cache_file if args.data_type == "int8" else None,
            batch_size=max(args.max_batch_size, 1),
        )
    if args.gen_ds_config:
        write_deepstream_config(output_path, args.classmap_json, checkpoint.arch, spec)
    return 0


def export_onnx(model: Any, path: Path, *, key: str) -> None:
    """Writes the network plus softmax as ONNX with a dynamic batch and the key digest."""
    import onnx
    import torch
    from onnxruntime.quantization import quant_pre_process

    from tao_kfp.cpu_backend.checkpoint import KEY_METADATA, new_key_check

    wrapped = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
    example = torch.zeros((1, *model.arch["input_shape"]))
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        # The TorchScript exporter (dynamo=False) is deprecated but exports this plain CNN in a
        # fraction of a second, with the exact tensor names given here; torch is pinned.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                (example,),
                raw,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
            )
        # Shape inference + graph cleanup once here, so calibration and the converter's
        # quantizer see the same tensor names.
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(raw, prepared, skip_symbolic_shape=True)
        graph = onnx.load(prepared)
    graph.doc_string = "Exported by the tao-kfp CPU backend (ONNX standing in for TAO's .etlt)"
    entry = graph.metadata_props.add()
    entry.key, entry.value = KEY_METADATA, json.dumps(new_key_check(key))
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def calibration_batches(args: argparse.Namespace, spec: Any) -> list:
    """Up to ``--batches`` float32 NCHW batches from ``--cal_data_file`` or ``--cal_image_dir``.

    As in TAO, a missing ``--cal_data_file`` is created from ``--cal_image_dir`` first.
    """
    import numpy as np

    from tao_kfp.cpu_backend.data import calibration_batches as stored_batches
    from tao_kfp.cpu_backend.data import write_tensorfile

    if args.cal_data_file and os.path.isfile(args.cal_data_file):
        batches = stored_batches(args.cal_data_file, args.batches, args.batch_size)
    elif args.cal_image_dir:
        batches = _batches_from_images(args.cal_image_dir, spec, args.batches, args.batch_size)
        if args.cal_data_file:
            write_tensorfile(args.cal_data_file, np.stack(batches))
    else:
        raise BackendError(
            "--data_type int8 needs calibration data: --cal_data_file <TensorFile from "
            "calibration_tensorfile> or --cal_image_dir <folder of images>"
        )
    return [np.ascontiguousarray(b, dtype=np.float32) for b in batches]


def _batches_from_images(image_dir: str, spec: Any, n_batches: int, batch_size: int) -> list:
    import random

    import torch

    from tao_kfp.cpu_backend.data import KERAS_EXTENSIONS, ImageFormat

    if spec is None:
        raise BackendError("--cal_image_dir needs -e <spec> for the preprocessing")
    image_format = ImageFormat.from_spec(spec)
    paths = sorted(
        os.path.join(root, name)
        for root, _dirs, names in os.walk(image_dir)
        for name in names
        if name.lower().endswith(KERAS_EXTENSIONS)
    )
    random.Random(spec.train_config.random_seed).shuffle(paths)
    usable = min(n_batches, len(paths) // batch_size)
    if usable < 1:
        raise BackendError(
            f"{image_dir} has {len(paths)} images, fewer than one batch of {batch_size}"
        )
    crop = "center" if spec.train_config.enable_center_crop else "none"
    batches = []
    for b in range(usable):
        chunk = paths[b * batch_size : (b + 1) * batch_size]
        images = torch.stack([torch.from_numpy(image_format.load(p, crop)) for p in chunk])
        batches.append(image_format.preprocess(images).numpy())
    return batches


def write_calibration_cache(model_path: Path, batches: list, cache_path: str) -> None:
    """Runs ONNX Runtime's MinMax calibrator and saves the per-tensor ranges as JSON."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator, save_tensors_data

    class _Reader:
        def __init__(self):
            self._batches = iter(batches)

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            model_path,
            augmented_model_path=os.path.join(tmp, "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
        )
        calibrator.collect_data(_Reader())
        ranges = calibrator.compute_data()
    Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
    save_tensors_data(ranges, cache_path)
    # ONNX Runtime writes through mkstemp (mode 0600); give it the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(cache_path, 0o666 & ~umask)


def write_deepstream_config(output: Path, classmap_json: str, arch: dict, spec: Any) -> None:
    """``labels.txt`` and ``nvinfer_config.txt`` next to the model, as ``--gen_ds_config`` does.

    ``tlt-model-key`` is left for the user to fill in: the key is never written to disk.
    """
    from tao_kfp.cpu_backend.data import CAFFE_MEAN
    from tao_kfp.cpu_backend.train import read_classmap

    class_names = read_classmap(classmap_json)
    channels, height, width = arch["input_shape"]
    mode = spec.train_config.preprocess_mode if spec is not None else "caffe"
    if mode == "tf":
        scale, offsets, color = 1 / 127.5, [127.5] * channels, 0
    elif mode == "torch":  # one scale for all channels: an approximation of mean/std
        scale, offsets, color = 1 / (255 * 0.226), [123.675, 116.28, 103.53][:channels], 0
    else:
        offsets = (
            [CAFFE_MEAN["b"], CAFFE_MEAN["g"], CAFFE_MEAN["r"]]
            if channels == 3
            else [CAFFE_MEAN["l"]]
        )
        scale, color = 1.0, 1
    color = 2 if channels == 1 else color
    folder = output.parent
    (folder / "labels.txt").write_text("".join(f"{name}\n" for name in class_names))
    lines = [
        f"net-scale-factor={scale}",
        f"offsets={';'.join(str(o) for o in offsets)}",
        f"infer-dims={channels};{height};{width}",
        "# tlt-model-key=<your model key>",
        "network-type=1",
        f"num-detected-classes={len(class_names)}",
        f"model-color-format={color}",
        "maintain-aspect-ratio=0",
        "output-tensor-meta=0",
    ]
    (folder / "nvinfer_config.txt").write_text("\n".join(lines) + "\n")
