"""Writes TAO's command names as wrappers around the CPU backend (build step of the stand-in).

TAO 3.x images have `classification` (tasks train, evaluate, ... as subcommands) and
`converter`; TAO 4/5 name the first `classification_tf1`, and the deploy image has
`gen_trt_engine`. Every CPU-backend subcommand that is not a classification task becomes a
command of its own, so a command the backend gains (e.g. gen_trt_engine) appears here without
an edit. Console scripts the package itself declares (other than tao-kfp and tao-kfp-cpu)
are installed as they are. `python` becomes the stand-in's own Python.
Usage: python install-tao-commands.py BACKEND_EXECUTABLE BIN_DIR
"""

import sys
from importlib.metadata import distribution
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
    venv_bin = Path(backend).parent
    commands = {"classification": backend, "classification_tf1": backend}
    commands.update(
        {name: f"{backend} {name}" for name in SUBCOMMANDS if name not in CLASSIFICATION_TASKS}
    )
    declared = {
        entry.name
        for entry in distribution("tao-kfp").entry_points
        if entry.group == "console_scripts" and entry.name not in ("tao-kfp", "tao-kfp-cpu")
    }
    commands.update({name: str(venv_bin / name) for name in declared})
    for command, prefix in sorted(commands.items()):
        path = Path(bin_dir) / command
        path.write_text(
            f'#!/bin/sh\n# TAO stand-in: {command} on the CPU backend.\nexec {prefix} "$@"\n'
        )
        path.chmod(0o755)
        print(f"{path} -> {prefix}")
    # `python` is the image's own Python, as TAO's is TAO's (its tasks run `python <script>`).
    # A wrapper, not a symlink: a venv is found from the path the interpreter is started by.
    python = Path(bin_dir) / "python"
    python.write_text(f'#!/bin/sh\nexec {venv_bin / "python"} "$@"\n')
    python.chmod(0o755)
    print(f"{python} -> {venv_bin / 'python'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
