"""TAO's launcher, played by the CPU backend: every argument is joined and re-split.

TAO's entrypoints parse the command line, re-emit every parsed value as ``--<dest> <value>``
(empty and None values dropped, booleans as bare flags, lists space-joined), join them into
one string ``bash -c '<env> python <script> <args>'`` and run ``shlex.split`` of it:

- TAO 5 TF1: NVIDIA/tao_tensorflow1_backend 5.0
  ``nvidia_tao_tf1/cv/common/entrypoint/entrypoint.py``: format_command_line_args 153-189
  (global flags skipped 167-170), the string 341-345, ``subprocess.run(shlex.split(...))``
  350-369, ``Execution status: FAIL`` and ``sys.exit(-1)`` 399-403.
- tao-deploy (``gen_trt_engine``): NVIDIA/tao_deploy 6.25.11
  ``nvidia_tao_deploy/cv/common/entrypoint/entrypoint_proto.py``: format_command_line_args
  119-149, the string 229, ``subprocess.run(shlex.split(...))`` 235-248, exit 1 on failure.
- TAO 3.x: the same entrypoint is assumed (tao-classification.md section 1), without the
  final ``Execution status`` line, which no 3.x output shows.

So a space inside a value splits it into two arguments ("unrecognized arguments" from the
script's parser), and a quote ends the outer ``'...'`` early (shlex's "No closing quotation"
or a word cut short). The stand-in runs the same string through the real ``shlex.split``;
for the inner ``bash -c`` it uses ``shlex.split`` too (POSIX word splitting and quote
removal, as bash does) and refuses the characters bash would expand or execute (``$ ` ; & |
< > ( ) * ? [ ] { } ~ # !``) rather than running a shell on them: the one remaining gap.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from datetime import datetime
from typing import Dict, List

# Parsed values each launcher handles itself and does not pass on to the script.
TF1_OWN = ("gpus", "gpu_index", "log_file", "use_amp", "num_processes")
DEPLOY_OWN = ("gpu_index", "log_file")
# Keys of the parsed namespace that are the stand-in's, not TAO's.
STANDIN_KEYS = ("tao_version", "task", "_module")
# Characters bash interprets beyond word splitting and quoting.
BASH_SPECIAL = re.compile(r"[$`;&|<>()*?\[\]{}~#!]")


class LauncherError(Exception):
    """The launcher's string cannot be run: TAO fails the same way (message says how)."""


def format_command_line_args(args: Dict[str, object], own: tuple) -> str:
    """The script's arguments as TAO's format_command_line_args writes them."""
    formatted = ""
    for arg, value in args.items():
        if arg in own or arg in STANDIN_KEYS:
            continue
        if value in (None, ""):
            continue
        if isinstance(value, bool):
            if value:
                formatted += f"--{arg} "
        elif isinstance(value, list):
            formatted += f"--{arg} {' '.join(str(v) for v in value)} "
        else:
            formatted += f"--{arg} {value} "
    return formatted


def launcher_own(task: str) -> tuple:
    """The global flags the launcher of ``task`` keeps for itself."""
    return DEPLOY_OWN if task == "gen_trt_engine" else TF1_OWN


def script_argv(args: argparse.Namespace) -> List[str]:
    """The argv TAO's script receives after the launcher's join and re-split.

    Raises:
        LauncherError: the string does not split (an unbalanced quote), or bash would
            interpret a character in it.
    """
    values = vars(args)
    env = "TF_ENABLE_AUTO_MIXED_PRECISION=0" if args.task != "gen_trt_engine" else ""
    script = f"/opt/tao/{args.task}.py"
    formatted = format_command_line_args(values, launcher_own(args.task))
    run_command = f"bash -c '{env} python3 {script} {formatted}'"
    try:
        words = shlex.split(run_command)  # what TAO runs; raises on an unbalanced quote
    except ValueError as error:
        raise LauncherError(
            f"{error} (TAO's launcher re-splits `{run_command.strip()}` with shlex.split)"
        ) from None
    inner = words[2]  # bash -c runs only this word; later ones become $0, $1, ...
    special = sorted(set(BASH_SPECIAL.findall(inner)))
    if special:
        raise LauncherError(
            f"bash would interpret {' '.join(special)} in `{inner.strip()}` (TAO's launcher "
            "hands every argument to bash -c): the stand-in refuses rather than run it"
        )
    try:
        command = shlex.split(inner)
    except ValueError as error:
        raise LauncherError(f"bash: {error} in `{inner.strip()}`") from None
    while command and "=" in command[0]:
        command.pop(0)  # the environment assignments
    return command[2:]  # after "python3 <script>"


def status_line(task: str, passed: bool) -> str:
    """The launcher's closing line for TAO 5 (tao-deploy logs it with its prefix)."""
    status = "PASS" if passed else "FAIL"
    if task == "gen_trt_engine":
        now = datetime.now()
        stamp = f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d}"
        name = "nvidia_tao_deploy.cv.common.entrypoint.entrypoint_proto"
        return f"{stamp} [TAO Toolkit] [INFO] {name}: Execution status: {status}"
    return f"Execution status: {status}"


def failure_exit_code(task: str) -> int:
    """TF1's launcher exits with sys.exit(-1) (255); tao-deploy's with 1."""
    return 1 if task == "gen_trt_engine" else 255


def print_status(task: str, tao_version: str, passed: bool) -> None:
    """Prints the TAO 5 launcher's closing line (3.x prints none)."""
    if tao_version == "5":
        print(status_line(task, passed), file=sys.stdout, flush=True)
