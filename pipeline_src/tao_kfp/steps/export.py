"""Steps 10-12: export fp32, INT8 calibration + export, and the TensorRT engine build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tao_kfp import dataset
from tao_kfp.steps import common
from tao_kfp.tao import key_args, run_tao

# TAO calibrates on at most this many batches (export's --batches default).
MAX_CALIBRATION_BATCHES = 10
OUTPUT_NODE = "predictions/Softmax"


@dataclass
class ExportResult:
    """Exported model, plus the calibration files of an INT8 export."""

    exported_model: str
    cal_cache: str = ""
    cal_tensorfile: str = ""


def exported_name(model_path: str, stem: str) -> str:
    """Export file name: ``.etlt`` for 3.x ``.tlt`` checkpoints, ``.onnx`` for 5.0 ``.hdf5``."""
    return f"{stem}.onnx" if model_path.endswith(".hdf5") else f"{stem}.etlt"


def _fresh(path: Path) -> Path:
    # export and calibration_tensorfile refuse to overwrite; a retried step starts clean.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def run_export_fp32(
    *, model_path: str, spec_path: str, results_dir: str, metrics=None
) -> ExportResult:
    """Runs ``export --data_type fp32`` and logs the exported file's size."""
    results = Path(results_dir)
    out = _fresh(results / exported_name(model_path, "model_fp32"))
    run_tao(
        ["export", "-m", model_path, "-o", str(out), "-e", spec_path, "--data_type", "fp32"]
        + key_args(),
        log_path=results / "tao.log",
    )
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
    """Writes a calibration TensorFile, then runs ``export --data_type int8`` with it."""
    results = Path(results_dir)
    batches, batch_size = calibration_batches(spec_path)
    tensorfile = _fresh(results / "calibration.tensor")
    cal_cache = _fresh(results / "calibration.bin")
    out = _fresh(results / exported_name(model_path, "model_int8"))
    log = results / "tao.log"
    run_tao(
        ["calibration_tensorfile", "-e", spec_path, "-o", str(tensorfile), "-m", str(batches)],
        log_path=log,
    )
    run_tao(
        [
            "export",
            "-m",
            model_path,
            "-o",
            str(out),
            "-e",
            spec_path,
            "--data_type",
            "int8",
            "--cal_data_file",
            str(tensorfile),
            "--cal_cache_file",
            str(cal_cache),
            "--batches",
            str(batches),
            "--batch_size",
            str(batch_size),
        ]
        + key_args(),
        log_path=log,
    )
    for produced in (out, cal_cache):
        if not produced.is_file():
            raise FileNotFoundError(f"INT8 export wrote no {produced}; see its log above.")
    common.log_metrics(
        metrics,
        {
            "export_size_mb": common.size_mb(out),
            "calibration_cache_mb": common.size_mb(cal_cache),
            "calibration_batches": batches,
            "calibration_batch_size": batch_size,
        },
    )
    return ExportResult(str(out), cal_cache=str(cal_cache), cal_tensorfile=str(tensorfile))


def run_convert(
    *,
    exported_model: str,
    cal_cache: str,
    spec_path: str,
    results_dir: str,
    metrics=None,
) -> str:
    """Builds an INT8 TensorRT engine with ``converter`` and logs its size; returns its path."""
    from tao_kfp import spec as spec_module

    spec = spec_module.load_spec(spec_path)
    batch_size = str(int(spec.train_config.batch_size_per_gpu))
    results = Path(results_dir)
    engine = _fresh(results / "model_int8.engine")
    run_tao(
        [exported_model]
        + key_args()
        + [
            "-c",
            cal_cache,
            "-o",
            OUTPUT_NODE,
            "-d",
            spec.model_config.input_image_size,
            "-i",
            "nchw",
            "-m",
            batch_size,
            "-t",
            "int8",
            "-e",
            str(engine),
            "-b",
            batch_size,
        ],
        command_env="TAO_CONVERTER",
        log_path=results / "tao.log",
    )
    # The converter prints no stable summary line: success is the exit code plus the file.
    if not engine.is_file():
        raise FileNotFoundError(f"converter wrote no {engine}; see its log above.")
    common.log_metrics(metrics, {"engine_size_mb": common.size_mb(engine)})
    return str(engine)
