"""``gen_trt_engine``: TAO 5.x's tao-deploy ``classification_tf1 gen_trt_engine`` on CPU.

Flags and rules of NVIDIA/tao_deploy 5.0 (a285787)
``nvidia_tao_deploy/cv/classification_tf1/scripts/gen_trt_engine.py``: ``-m``, ``-e`` and ``-r``
are required (100-105, 114-119, 190-196); an engine is built when ``--engine_file`` is given or
``--data_type int8`` (60-83). INT8 reads ``--cal_data_file`` when it exists, else builds it
from ``--cal_image_dir`` (engine_builder.py:281-288), and writes ``--cal_cache_file``. The
spec is parsed with the deploy proto, which lacks fields the TF1 proto has
(``spec.DEPLOY_ABSENT_FIELDS``): a spec carrying them is refused, as the deploy parser would.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tao_kfp.cpu_backend.common import BackendError, log


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """tao-deploy gen_trt_engine flags."""
    parser.add_argument("-m", "--model_path", required=True, help=".onnx model from export")
    parser.add_argument("-k", "--key", default=None, help="key of an .etlt model")
    parser.add_argument("-e", "--experiment_spec", required=True, help="spec")
    parser.add_argument("--data_type", choices=("fp32", "fp16", "int8"), default="fp32")
    parser.add_argument("--cal_image_dir", default="", help="images for INT8 calibration")
    parser.add_argument("--cal_data_file", default=None, help="TensorFile for INT8 calibration")
    parser.add_argument("--cal_cache_file", default=None, help="calibration cache to write")
    parser.add_argument("--engine_file", default=None, help="engine to write")
    parser.add_argument("--max_batch_size", type=int, default=1, help="engine max batch")
    parser.add_argument("--min_batch_size", type=int, default=1, help="ignored")
    parser.add_argument("--opt_batch_size", type=int, default=1, help="ignored")
    parser.add_argument("--batch_size", type=int, default=1, help="calibration batch size")
    parser.add_argument("--batches", type=int, default=10, help="calibration batches")
    parser.add_argument("--max_workspace_size", type=int, default=2, help="ignored")
    parser.add_argument("-s", "--strict_type_constraints", action="store_true", help="ignored")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")
    parser.add_argument("-r", "--results_dir", required=True, help="log folder")


def check_deploy_spec(path: str) -> object:
    """Loads the spec and refuses fields the deploy proto lacks, naming them."""
    from tao_kfp.cpu_backend.common import load_experiment_spec
    from tao_kfp.spec import DEPLOY_ABSENT_FIELDS

    spec = load_experiment_spec(path)
    present = []
    for field in DEPLOY_ABSENT_FIELDS:
        *parents, name = field.split(".")
        message = spec
        for parent in parents:
            message = getattr(message, parent)
        if message.HasField(name) if name.endswith("_config") else getattr(message, name):
            present.append(field)
    if present:
        raise BackendError(
            f"{path}: the tao-deploy spec parser has no field {', '.join(present)} "
            "(its proto lacks them); remove them from the spec given to gen_trt_engine"
        )
    return spec


def run(args: argparse.Namespace) -> int:
    """Builds the engine (and, for int8, the calibration cache); returns 0."""
    import numpy as np

    from tao_kfp.cpu_backend.common import use_all_cores
    from tao_kfp.cpu_backend.convert import build_engine
    from tao_kfp.cpu_backend.data import calibration_batches, write_tensorfile
    from tao_kfp.cpu_backend.export import _batches_from_images, write_calibration_cache

    use_all_cores()
    spec = check_deploy_spec(args.experiment_spec)
    Path(args.results_dir).mkdir(parents=True, exist_ok=True)
    model = Path(args.model_path)
    if not model.is_file():
        raise BackendError(f"model file {model} not found (-m)")
    if args.engine_file is None and args.data_type != "int8":
        log("Export finished successfully.")  # nothing to build, as gen_trt_engine.py:60
        return 0
    engine = args.engine_file or tempfile.mkstemp(suffix=".engine")[1]
    cache = None
    if args.data_type == "int8":
        if not args.cal_cache_file:
            raise BackendError("--data_type int8 needs --cal_cache_file <calibration cache>")
        if args.cal_data_file and os.path.isfile(args.cal_data_file):
            batches = calibration_batches(args.cal_data_file, args.batches, args.batch_size)
        else:
            batches = _batches_from_images(args.cal_image_dir, spec, args.batches, args.batch_size)
            if args.cal_data_file:
                write_tensorfile(args.cal_data_file, np.stack(batches))
        batches = [np.ascontiguousarray(b, dtype=np.float32) for b in batches]
        log("Calibrating using TensorfileCalibrator")
        write_calibration_cache(model, batches, args.cal_cache_file)
        cache = args.cal_cache_file
    build_engine(
        model,
        Path(engine),
        data_type=args.data_type,
        cache=cache,
        batch_size=max(args.max_batch_size, 1),
    )
    log("Export finished successfully.")
    return 0
