"""Command line of the CPU backend: ``tao-kfp-cpu [--tao-version 3|5] <sub> [flags]``.

Speaks TAO 3.x's ``classification`` CLI (same subcommands, same short flags) plus ``converter``
(tao-converter's flags), so the pipeline's steps run unchanged with
``TAO_ENTRYPOINT="<python> -m tao_kfp.cpu_backend"`` and
``TAO_CONVERTER="<python> -m tao_kfp.cpu_backend converter"``. With ``--tao-version 5`` it
plays TAO 5.x instead: ``classification_tf1`` (``.hdf5`` checkpoints, ONNX export, no ``-k``
needed) plus the tao-deploy image's ``gen_trt_engine``, and no ``converter``.
It is a stand-in to exercise the pipeline on a laptop, not a replacement for TAO.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, TextIO

from tao_kfp.cpu_backend.common import TAO_VERSIONS

# When set, each command appends {"task", "seconds", "exit_code"} as a JSON line to this file,
# so a local run can tell the backend's own compute time from orchestration overhead.
TIMINGS_ENV = "TAO_KFP_BACKEND_TIMINGS"

# subcommand -> (module, help). Modules import torch lazily inside run().
SUBCOMMANDS = {
    "train": ("tao_kfp.cpu_backend.train", "train a classifier (writes weights/, training.csv)"),
    "evaluate": ("tao_kfp.cpu_backend.evaluate", "evaluate eval_config.model_path"),
    "prune": ("tao_kfp.cpu_backend.prune", "prune filters by norm (structured)"),
    "inference": ("tao_kfp.cpu_backend.inference", "classify one image or a folder"),
    "export": ("tao_kfp.cpu_backend.export", "export to .etlt (an ONNX model here)"),
    "calibration_tensorfile": (
        "tao_kfp.cpu_backend.calibrate",
        "write INT8 calibration batches to a TensorFile",
    ),
    "converter": ("tao_kfp.cpu_backend.convert", "build an engine (ONNX Runtime model)"),
    "gen_trt_engine": ("tao_kfp.cpu_backend.deploy", "tao-deploy engine build (TAO 5.x)"),
}
# Tasks that exist in only one TAO version (5.x builds engines with tao-deploy).
VERSION_ONLY = {"converter": "3", "gen_trt_engine": "5"}


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags TAO's entrypoint takes for every task; on CPU they are accepted and noted."""
    group = parser.add_argument_group("global flags (TAO entrypoint)")
    group.add_argument("--gpus", type=int, default=1, help="number of GPUs (CPU: ignored)")
    group.add_argument("--gpu_index", type=int, nargs="+", default=None, help="GPU ids (ignored)")
    group.add_argument("-np", "--num_processes", type=int, default=-1, help="processes (ignored)")
    group.add_argument("--use_amp", action="store_true", help="mixed precision (ignored on CPU)")
    group.add_argument("--log_file", default=None, help="also append all output to this file")


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-parser per TAO subcommand."""
    parser = argparse.ArgumentParser(
        prog="tao-kfp-cpu",
        description="CPU stand-in for TAO 3.x classification (for local pipeline runs only).",
    )
    parser.add_argument(
        "--tao-version",
        choices=TAO_VERSIONS,
        default="3",
        help="TAO major version to play: 3 (classification, converter) or 5 "
        "(classification_tf1, tao-deploy gen_trt_engine)",
    )
    subparsers = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)
        add_global_arguments(sub)
    return parser


class _Tee:
    """Writes to a stream and to a log file, flushing both so progress shows up line by line."""

    def __init__(self, stream: TextIO, log_file: TextIO):
        self._stream = stream
        self._log_file = log_file

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._log_file.write(text)
        if "\n" in text:
            self.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()
        self._log_file.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``tao-kfp-cpu`` and ``python -m tao_kfp.cpu_backend``."""
    from tao_kfp.cpu_backend import common

    parser = build_parser()
    args = parser.parse_args(argv)
    common.play_tao_version(args.tao_version)
    only = VERSION_ONLY.get(args.task)
    if only and only != args.tao_version:
        print(
            f"error: TAO {args.tao_version} has no {args.task} here (TAO {only} only): TAO 3.x "
            "builds engines with converter, TAO 5.x with tao-deploy's gen_trt_engine",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    exit_code = 1
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    saved = sys.stdout, sys.stderr
    log_handle = None
    if args.log_file:
        Path(args.log_file).parent.mkdir(parents=True, exist_ok=True)
        log_handle = open(args.log_file, "a", encoding="utf-8")  # closed in the finally below
        sys.stdout, sys.stderr = _Tee(sys.stdout, log_handle), _Tee(sys.stderr, log_handle)
    try:
        if args.gpus > 1 or args.use_amp:
            print(
                f"note: --gpus {args.gpus}{' --use_amp' if args.use_amp else ''} requested; "
                "the CPU backend trains in one process in float32",
                flush=True,
            )
        exit_code = _run_through_launcher(parser, args)
        return exit_code
    finally:
        sys.stdout, sys.stderr = saved
        if log_handle is not None:
            log_handle.close()
        _record_timing(args.task, time.monotonic() - started, exit_code)


def _run_through_launcher(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Runs the task as TAO does: its launcher re-splits the arguments, then the script runs.

    ``converter`` is tao-converter, a binary with no launcher. See launcher.py for the rules.
    """
    from tao_kfp.cpu_backend import launcher
    from tao_kfp.cpu_backend.common import BackendError

    script_args = args
    if args.task != "converter":
        try:
            argv = launcher.script_argv(args)
            script_args = parser.parse_args(["--tao-version", args.tao_version, args.task, *argv])
        except launcher.LauncherError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return _failed(args, 1)
        except SystemExit as exit_:  # the script's argparse error, printed to stderr already
            return _failed(args, exit_.code if isinstance(exit_.code, int) else 2)
    try:
        code = importlib.import_module(args._module).run(script_args)
    except BackendError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return _failed(args, 1)
    if code != 0:
        return _failed(args, code)
    launcher.print_status(args.task, args.tao_version, passed=True)
    return 0


def _failed(args: argparse.Namespace, script_code: int) -> int:
    """The exit code of a failed task: TAO 5's launcher prints FAIL and exits with its own."""
    from tao_kfp.cpu_backend import launcher

    if args.task == "converter" or args.tao_version != "5":
        return script_code
    launcher.print_status(args.task, args.tao_version, passed=False)
    return launcher.failure_exit_code(args.task)


def _record_timing(task: str, seconds: float, exit_code: int) -> None:
    path = os.environ.get(TIMINGS_ENV)
    if path:
        record = {"task": task, "seconds": round(seconds, 3), "exit_code": exit_code}
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.exit(main())
