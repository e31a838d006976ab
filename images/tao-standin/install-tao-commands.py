"""Writes TAO's command names as wrappers around the CPU backend (build step of the stand-in).

TAO 3.x images have `classification` (tasks train, evaluate, ... as subcommands) and
`converter`; TAO 4/5 name the first `classification_tf1`, and the deploy image has
`gen_trt_engine`. Every CPU-backend subcommand that is not a classification task becomes a
command of its own, so a command the backend gains (e.g. gen_trt_engine) appears here without
an edit. `python` becomes the stand-in's own Python.
Usage: python install-tao-commands.py BACKEND_EXECUTABLE BIN_DIR
"""

import sys
from pathlib import Path

from tao_kfp.cpu_backend.cli import SUBCOMMANDS

# The tasks TAO's classification entrypoint dispatches (TAO 3.x `classification <task>`).
CLASSIFICATION_TASKS = {
    "train",
    "evaluate",
    "prune",
    "inference",
    "export",
    "calibration_tensorfile",
}


def main(backend: str, bin_dir: str) -> None:
    """Writes one wrapper per TAO command into ``bin_dir``, each exec-ing ``backend``."""
    commands = {"classification": "", "classification_tf1": ""}
    commands.update({name: name for name in SUBCOMMANDS if name not in CLASSIFICATION_TASKS})
    for command, subcommand in sorted(commands.items()):
        path = Path(bin_dir) / command
        prefix = f"{backend} {subcommand}".rstrip()
        path.write_text(
            f'#!/bin/sh\n# TAO stand-in: {command} on the CPU backend.\nexec {prefix} "$@"\n'
        )
        path.chmod(0o755)
        print(f"{path} -> {prefix}")
    # `python` is the image's own Python, as TAO's is TAO's (its tasks run `python <script>`).
    # A wrapper, not a symlink: a venv is found from the path the interpreter is started by.
    python = Path(bin_dir) / "python"
    python.write_text(f'#!/bin/sh\nexec {Path(backend).parent / "python"} "$@"\n')
    python.chmod(0o755)
    print(f"{python} -> {Path(backend).parent / 'python'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
