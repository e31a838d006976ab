"""Steps 10-12: export fp32, INT8 calibration (+ export), and the TensorRT engine build.

Two lines of the TF1 route (tao_kfp.routes.tf1 declares what differs), chosen by the step
image's TAO version (``TAO_VERSION``), over one DAG:

- TAO 3.x: step 10 exports an fp32 ``.etlt``; step 11 writes a calibration TensorFile and
  exports an INT8 ``.etlt`` plus its calibration cache (3.x builds an engine "to verify" while
  exporting, which writes the cache); step 12 runs ``converter`` on that ``.etlt``.
  3.x export gets the flags the 3.x notebook and the seed pipeline pass
  (``-m -k -o --data_type --cal_data_file --cal_cache_file --batches``) plus ``--batch_size``:
  the calibrator reads ``--batch_size`` images from each stored batch and fails when a batch
  is smaller (tao_tensorflow1_backend 5.0 ``common/export/tensorfile_calibrator.py:91-109``),
  and the flag defaults to 16 (``common/export/app.py:119-123``), so a TensorFile written
  with a batch size under 16 would fail without it. Whether 3.x accepts ``-e`` is unverified.
- TAO 5.x: step 10 exports the ONNX model (once: 5.0 exports ONNX whatever the data type, and
  writes a calibration cache only while building an engine, tao_tensorflow1_backend 5.0
  ``common/export/app.py:242-244``); step 11 writes the calibration TensorFile; step 12 runs
  ``classification_tf1 gen_trt_engine`` in the tao-deploy image, which calibrates and builds
  the INT8 engine (tao_deploy 5.0 ``cv/classification_tf1/scripts/gen_trt_engine.py:60-83``).

Both calibrators read ``--batches`` batches of ``--batch_size`` from the TensorFile: reading
past its last batch fails with ``IndexError`` (``TensorFile.read`` returns None at the end,
``np.array(None).shape[0]``: tao_deploy ``engine/tensorfile.py:120-140``,
``engine/tensorfile_calibrator.py:86-104``). Step 11 therefore records the batch count and
batch size it wrote (``calibration.json`` beside the TensorFile) and step 12 passes exactly
those, never a recount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

from tao_kfp import dataset
from tao_kfp.routes import tf1
from tao_kfp.steps import common
from tao_kfp.tao import key_args, run_tao

# TAO calibrates on at most this many batches (export's --batches default).
MAX_CALIBRATION_BATCHES = 10
OUTPUT_NODE = "predictions/Softmax"
ENGINE_NAME = "model_int8.engine"
# Written by step 11 beside the TensorFile: {"batches": n, "batch_size": b}.
CALIBRATION_RECORD = "calibration.json"


@dataclass
class ExportResult:
    """Exported model, plus the calibration files of an INT8 export."""

    exported_model: str
    cal_cache: str = ""
    cal_tensorfile: str = ""


def exported_name(stem: str) -> str:
    """Export file name: ``.etlt`` (UFF) on TAO 3.x, ``.onnx`` on 5.x (which forces ONNX)."""
    return stem + tf1.line().export_extension


def _fresh(path: Path) -> Path:
    # export and calibration_tensorfile refuse to overwrite; a retried step starts clean.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def export_args(model_path: str, out: Path, spec_path: str, data_type: str) -> List[str]:
    """``export`` arguments for the step image's TAO version.

    5.x: ``-m -o -e`` (5.0 common/export/app.py:42-47, 54-58, 138-142); 3.x: ``-m -o`` (the
    3.x notebook). ``--data_type`` exists in both (app.py:80-85).
    """
    args = ["export", "-m", model_path, "-o", str(out), "--data_type", data_type]
    if tf1.line().export_takes_spec:
        args += ["-e", spec_path]
    return args + key_args()


def run_export_fp32(
    *, model_path: str, spec_path: str, results_dir: str, metrics=None
) -> ExportResult:
    """Runs ``export --data_type fp32`` and logs the exported file's size."""
    results = Path(results_dir)
    out = _fresh(results / exported_name("model_fp32"))
    run_tao(export_args(model_path, out, spec_path, "fp32"), log_path=results / "tao.log")
    if not out.is_file():
        raise FileNotFoundError(f"export wrote no {out}; see its log above.")
    common.log_metrics(
        metrics,
        {"model_size_mb": common.size_mb(model_path), "export_size_mb": common.size_mb(out)},
    )
    return ExportResult(exported_model=str(out))


def calibration_batches(spec_path: str) -> tuple[int, int]:
    """(max_batches, batch_size) for calibration: at most 10 and <= train images / batch size."""
    from tao_kfp import spec as spec_module

    spec = spec_module.load_spec(spec_path)
    batch_size = int(spec.train_config.batch_size_per_gpu)
    layout = dataset.scan_class_folders(Path(spec.train_config.train_dataset_path).parent)
    images = sum(len(files) for files in layout.get("train", {}).values())
    batches = min(MAX_CALIBRATION_BATCHES, images // batch_size)
    if batches < 1:
        raise ValueError(
            f"INT8 calibration needs at least one batch: {images} train images < batch size "
            f"{batch_size}. Lower batch_size."
        )
    return batches, batch_size


def run_export_int8(
    *, model_path: str, spec_path: str, results_dir: str, metrics=None
) -> ExportResult:
    """Writes a calibration TensorFile; on TAO 3.x also runs ``export --data_type int8``.

    On 5.x the INT8 export is step 12's ``gen_trt_engine`` (5.0's export would write no cache).
    """
    results = Path(results_dir)
    batches, batch_size = calibration_batches(spec_path)
    tensorfile = _fresh(results / "calibration.tensor")
    log = results / "tao.log"
    # calibration_tensorfile -e -o -m (5.0 makenet/scripts/calibration_tensorfile.py:45-50).
    run_tao(
        ["calibration_tensorfile", "-e", spec_path, "-o", str(tensorfile), "-m", str(batches)],
        log_path=log,
    )
    if not tensorfile.is_file():
        raise FileNotFoundError(f"calibration_tensorfile wrote no {tensorfile}; see its log.")
    write_calibration_record(tensorfile, batches, batch_size)
    values = {
        "calibration_data_mb": common.size_mb(tensorfile),
        "calibration_batches": batches,
        "calibration_batch_size": batch_size,
    }
    if tf1.line().engine_from_onnx:
        common.log_metrics(metrics, values)
        return ExportResult("", cal_tensorfile=str(tensorfile))

    cal_cache = _fresh(results / "calibration.bin")
    out = _fresh(results / exported_name("model_int8"))
    run_tao(
        export_args(model_path, out, spec_path, "int8")
        + ["--cal_data_file", str(tensorfile), "--cal_cache_file", str(cal_cache)]
        + ["--batches", str(batches), "--batch_size", str(batch_size)],
        log_path=log,
    )
    for produced in (out, cal_cache):
        if not produced.is_file():
            raise FileNotFoundError(f"INT8 export wrote no {produced}; see its log above.")
    values.update(
        {"export_size_mb": common.size_mb(out), "calibration_cache_mb": common.size_mb(cal_cache)}
    )
    common.log_metrics(metrics, values)
    return ExportResult(str(out), cal_cache=str(cal_cache), cal_tensorfile=str(tensorfile))


def converter_args(exported_model: str, cal_cache: str, engine: Path, spec_path: str) -> List[str]:
    """TAO 3.x ``converter`` arguments for an INT8 engine (the 3.x notebook's form)."""
    from tao_kfp import spec as spec_module

    spec = spec_module.load_spec(spec_path)
    batch_size = str(int(spec.train_config.batch_size_per_gpu))
    return (
        [exported_model]
        + key_args()
        + ["-c", cal_cache, "-o", OUTPUT_NODE, "-d", spec.model_config.input_image_size]
        + ["-i", "nchw", "-m", batch_size, "-t", "int8", "-e", str(engine), "-b", batch_size]
    )


def write_calibration_record(tensorfile: Path, batches: int, batch_size: int) -> Path:
    """Records beside the TensorFile how many batches of which size it holds."""
    record = tensorfile.parent / CALIBRATION_RECORD
    record.write_text(json.dumps({"batches": batches, "batch_size": batch_size}) + "\n")
    return record


def read_calibration_record(cal_data_file: str) -> Tuple[int, int]:
    """(batches, batch_size) that step 11 wrote into ``cal_data_file``.

    Raises:
        FileNotFoundError: The record is missing (a TensorFile from another run or version).
    """
    record = Path(cal_data_file).parent / CALIBRATION_RECORD
    if not record.is_file():
        raise FileNotFoundError(
            f"{record} is missing: step 11 writes it with the TensorFile {cal_data_file}; "
            "re-run step 11 (INT8 calibration)."
        )
    data = json.loads(record.read_text())
    return int(data["batches"]), int(data["batch_size"])


def gen_trt_engine_args(
    *, onnx_model: str, spec_path: str, results: Path, cal_data_file: str
) -> List[str]:
    """TAO 5.x ``gen_trt_engine`` arguments for an INT8 engine.

    Flags from tao_deploy 5.0 (a285787) ``cv/classification_tf1/scripts/gen_trt_engine.py``:
    ``-m`` (100-105, required), ``-e`` (114-119, required), ``-r`` (190-196, required),
    ``--data_type`` (121-126), ``--cal_data_file`` (132-136), ``--cal_cache_file`` (137-141),
    ``--engine_file`` (142-146), ``--max_batch_size`` (147-151), ``--batch_size`` (162-166),
    ``--batches`` (167-171). The TensorFile exists, so it is read as is and
    ``--cal_image_dir`` would be unused (engine_builder.py:281-288): it is not passed, as a
    dataset path it could only break the launcher's re-split. ``--batches`` and
    ``--batch_size`` are the ones the TensorFile was written with (step 11's record).
    """
    batches, batch_size = read_calibration_record(cal_data_file)
    return [
        "gen_trt_engine",
        "-m",
        onnx_model,
        "-e",
        str(deploy_spec_file(spec_path, results)),
        "-r",
        str(results),
        "--data_type",
        "int8",
        "--cal_data_file",
        cal_data_file,
        "--cal_cache_file",
        str(results / "calibration.bin"),
        "--batches",
        str(batches),
        "--batch_size",
        str(batch_size),
        "--max_batch_size",
        str(batch_size),
        "--engine_file",
        str(results / ENGINE_NAME),
    ]


def deploy_spec_file(spec_path: str, results: Path) -> Path:
    """The spec without the fields tao-deploy's proto lacks (see spec.deploy_spec)."""
    from tao_kfp import spec as spec_module

    out = results / "deploy_spec.cfg"
    out.write_text(spec_module.dump_spec(spec_module.deploy_spec(spec_module.load_spec(spec_path))))
    return out


def run_build_engine(
    *,
    int8_model: str,
    cal_cache: str,
    fp32_model: str,
    cal_data_file: str,
    spec_path: str,
    results_dir: str,
    metrics=None,
) -> str:
    """Builds the INT8 engine with the route's tool, logs its size and returns its path.

    Args:
        int8_model: Step 11's INT8 ``.etlt`` (3.x; "" on 5.x).
        cal_cache: Step 11's calibration cache (3.x; "" on 5.x).
        fp32_model: Step 10's export (the ONNX model gen_trt_engine reads on 5.x).
        cal_data_file: Step 11's calibration TensorFile (5.x).
        spec_path: Retrain spec.
        results_dir: Folder for the engine, the log and (5.x) the cache.
        metrics: kfp ``Metrics`` artifact (optional).
    """
    results = Path(results_dir)
    engine = _fresh(results / ENGINE_NAME)
    log = results / "tao.log"
    values = {}
    if tf1.line().engine_from_onnx:
        cache = _fresh(results / "calibration.bin")
        args = gen_trt_engine_args(
            onnx_model=fp32_model,
            spec_path=spec_path,
            results=results,
            cal_data_file=cal_data_file,
        )
        run_tao(args, command_env="TAO_DEPLOY_ENTRYPOINT", log_path=log)
        if cache.is_file():
            values["calibration_cache_mb"] = common.size_mb(cache)
    else:
        args = converter_args(int8_model, cal_cache, engine, spec_path)
        run_tao(args, command_env="TAO_CONVERTER", log_path=log)
    # Neither tool prints a stable summary line: success is the exit code plus the file.
    if not engine.is_file():
        raise FileNotFoundError(f"the engine builder wrote no {engine}; see its log above.")
    values["engine_size_mb"] = common.size_mb(engine)
    common.log_metrics(metrics, values)
    return str(engine)
