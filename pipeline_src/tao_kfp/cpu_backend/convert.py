"""``converter``: tao-converter's command line, building an ONNX Runtime "engine" on CPU.

TensorRT is not available on CPU; the engine written at ``-e`` is an ONNX Runtime model:
``-t int8`` quantizes the ``.etlt`` (ONNX) statically in QDQ format with the ranges of the
calibration cache (``-c``), ``fp16`` converts weights and activations to float16 (inputs and
outputs stay float32), ``fp32`` keeps it as is; then ONNX Runtime's graph optimizer runs and
its result is saved. The engine is benchmarked with a few timed runs and the result printed in
TensorRT's log style. Success = exit code 0 and the engine file exists, as with tao-converter.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from tao_kfp.cpu_backend.common import BackendError


def trt_log(message: str, level: str = "INFO") -> None:
    """Prints a TensorRT-style log line such as ``[INFO] Detected 1 inputs ...``."""
    print(f"[{level}] {message}", flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """tao-converter flags."""
    parser.add_argument("input_file", help="the .etlt model written by export")
    parser.add_argument("-k", "--key", default="", help="model key used at export")
    parser.add_argument("-o", "--outputs", default=None, help="comma-separated output nodes")
    parser.add_argument("-d", "--input_dims", default=None, help="input dims C,H,W")
    parser.add_argument("-i", "--input_order", choices=("nchw", "nhwc", "nc"), default="nchw")
    parser.add_argument("-t", "--data_type", choices=("fp32", "fp16", "int8"), default="fp32")
    parser.add_argument("-c", "--cal_cache", default=None, help="calibration cache (int8)")
    parser.add_argument("-e", "--engine", default="saved.engine", help="engine file to write")
    parser.add_argument("-m", "--max_batch_size", type=int, default=16, help="max batch")
    parser.add_argument("-b", "--batch_size", type=int, default=8, help="calibration batch")
    parser.add_argument("-w", "--max_workspace_size", type=int, default=1 << 30, help="ignored")
    parser.add_argument(
        "-p", "--profile", action="append", default=[], help="name,min,opt,max shapes (NxCxHxW)"
    )
    parser.add_argument("-s", "--strict_type", action="store_true", help="ignored")
    parser.add_argument("-u", "--dla_core", type=int, default=None, help="ignored (no DLA)")


def run(args: argparse.Namespace) -> int:
    """Checks the model against the flags, builds the engine and benchmarks it; returns 0."""
    import onnx

    from tao_kfp.cpu_backend.checkpoint import KEY_METADATA, key_matches
    from tao_kfp.cpu_backend.common import use_all_cores

    use_all_cores()
    source = Path(args.input_file)
    if not source.is_file():
        raise BackendError(f"model file {source} not found")
    try:
        graph = onnx.load(str(source), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for foreign files
        raise BackendError(
            f"{source} is not a model written by the CPU backend's export ({type(error).__name__})"
        ) from None
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    if KEY_METADATA in metadata and not key_matches(json.loads(metadata[KEY_METADATA]), args.key):
        raise BackendError(
            f"cannot load {source}: wrong key. It was exported with a different -k; "
            "pass the key used at export."
        )
    input_tensor = graph.graph.input[0]
    name = input_tensor.name
    dims = [d.dim_value if d.dim_value else -1 for d in input_tensor.type.tensor_type.shape.dim]
    outputs = [o.name for o in graph.graph.output]
    if args.outputs:
        missing = [name for name in args.outputs.split(",") if name and name not in outputs]
        if missing:
            raise BackendError(f"-o: output nodes {missing} not in the model (it has {outputs})")
    if args.input_dims:
        wanted = [int(v) for v in args.input_dims.split(",")]
        if wanted != dims[1:]:
            raise BackendError(
                f"-d {args.input_dims} does not match the model input {dims[1:]} (C,H,W)"
            )
    if args.input_order != "nchw":
        raise BackendError(f"-i {args.input_order}: the exported model takes NCHW input")
    if args.dla_core is not None:
        trt_log("DLA requested with -u but no DLA core exists on CPU; ignoring", "WARNING")

    trt_log(f"Detected input dimensions from the model: ({', '.join(map(str, dims))})")
    batch = max(args.max_batch_size, 1)
    profile = [args.profile[0].split(",")] if args.profile else []
    if dims[0] == -1:
        trt_log("Model has dynamic shape. Setting up optimization profiles.")
        shape = tuple(dims[1:])
        min_b, opt_b, max_b = 1, batch, batch
        if profile and len(profile[0]) == 4:
            min_b, opt_b, max_b = (int(p.split("x")[0]) for p in profile[0][1:])
        for label, n in (("min", min_b), ("opt", opt_b), ("max", max_b)):
            shape_text = (n, *shape)
            trt_log(f"Using optimization profile {label} shape: {shape_text} for input: {name}")
        batch = opt_b
    build_engine(
        source,
        Path(args.engine),
        data_type=args.data_type,
        cache=args.cal_cache,
        batch_size=batch,
    )
    return 0


def build_engine(
    source: Path, engine: Path, *, data_type: str, cache: Optional[str], batch_size: int
) -> None:
    """Quantizes/converts and graph-optimizes ``source`` into ``engine``, then benchmarks it."""
    import onnx
    import onnxruntime as ort

    engine.parent.mkdir(parents=True, exist_ok=True)
    trt_log(f"ONNX Runtime {ort.__version__} CPU engine builder (standing in for TensorRT)")
    trt_log("Detected 1 inputs and 1 output network tensors.")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = str(source)
        if data_type == "int8":
            model_path = _quantize(source, cache, os.path.join(tmp, "qdq.onnx"))
        elif data_type == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            half = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
            model_path = os.path.join(tmp, "fp16.onnx")
            onnx.save(half, model_path)
        options = ort.SessionOptions()
        # EXTENDED fuses QDQ pairs into QLinear kernels but, unlike ALL, writes no
        # hardware-specific layouts into the saved model.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(engine)
        ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    seconds = time.perf_counter() - started
    trt_log(f"Engine ({data_type}) built in {seconds:.2f} s, {engine.stat().st_size} bytes")
    trt_log(f"Serialized engine saved to {engine}")
    benchmark(engine, batch_size)


def _quantize(source: Path, cache: Optional[str], output: str) -> str:
    """Static QDQ quantization with the ranges stored in the calibration cache."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if not cache or not os.path.isfile(cache):
        raise BackendError(
            f"-t int8 needs the calibration cache written by export --data_type int8 (-c {cache})"
        )
    trt_log(f"Reading Calibration Cache for calibrator: MinMax from {cache}")
    try:
        quantize_static(
            str(source),
            output,
            calibration_data_reader=None,
            calibration_cache_path=cache,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    except (ValueError, KeyError, json.JSONDecodeError) as error:
        raise BackendError(
            f"calibration cache {cache} does not fit {source}: {error}. "
            "Re-run export --data_type int8 for this model."
        ) from None
    return output


def benchmark(engine: Path, batch_size: int, max_seconds: float = 5.0) -> None:
    """Times the engine on random input (3 to 10 runs, about ``max_seconds`` at most)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(engine), providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    shape = [batch_size if not isinstance(d, int) or d < 1 else d for d in model_input.shape]
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    session.run(None, {model_input.name: data})  # warm-up
    timings = []
    while len(timings) < 10 and (len(timings) < 3 or sum(timings) < max_seconds):
        started = time.perf_counter()
        session.run(None, {model_input.name: data})
        timings.append(time.perf_counter() - started)
    mean_ms = 1000 * sum(timings) / len(timings)
    trt_log(
        f"Benchmark: batch {shape[0]}, {len(timings)} runs, mean latency {mean_ms:.2f} ms "
        f"(min {1000 * min(timings):.2f} ms), throughput {1000 * shape[0] / mean_ms:.1f} images/s"
    )
