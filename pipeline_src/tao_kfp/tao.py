"""Runs TAO's own command line as a subprocess, streaming its output with secrets redacted.

TAO 3.x images ship Python 3.6, so the step code (Python >= 3.10, kfp, this package) cannot
import TAO; it calls TAO's ``classification`` command instead. The command is read from an
environment variable so one pipeline serves TAO 3.x (``classification``), 5.x
(``classification_tf1``) and the CPU backend (``<python> -m tao_kfp.cpu_backend``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

from tao_kfp import routes

# Credentials' environment variables (SECRET_ENV_NAMES) are redacted from every line run_tao
# prints or returns. TAO_VERSION_ENV holds the step image's tao.version (tao_kfp.routes).
from tao_kfp.names import (  # noqa: F401 (re-exported for the steps)
    MODEL_KEY_ENV,
    NGC_API_KEY_ENV,
    SECRET_ENV_NAMES,
    TAO_CONVERTER_ENV,
    TAO_DEPLOY_ENTRYPOINT_ENV,
    TAO_ENTRYPOINT_ENV,
    TAO_VERSION_ENV,
)
from tao_kfp.routes import tf1
from tao_kfp.value_rules import LAUNCHER_SAFE_PATTERN  # noqa: F401 (re-exported)

REDACTED = "****"
SYSTEM_PATH_ENV = "TAO_KFP_SYSTEM_PATH"
FAIL_MARKER = "Execution status: FAIL"


# What TAO's launchers can carry in one argument. Both build one string and re-split it:
# `bash -c '{env} python {script} --flag value ...'` run as subprocess.run(shlex.split(...))
# (NVIDIA/tao_deploy 6.25.11 nvidia_tao_deploy/cv/common/entrypoint/entrypoint_proto.py:229-244;
# NVIDIA/tao_tensorflow1_backend 5.0 nvidia_tao_tf1/cv/common/entrypoint/entrypoint.py:341-363).
# A value survives both splits unchanged only when it holds no character that shlex or bash
# treat specially: exactly the characters shlex.quote leaves unquoted (shlex._find_unsafe).
# One definition, shared with the chart's checks (value_rules, templates/_validate.tpl).
LAUNCHER_SAFE_CHARACTERS = "letters, digits and _ @ % + = : , . / -"


def launcher_safe(value: str) -> bool:
    """Whether ``value`` reaches the TAO script unchanged through the launcher's re-split.

    A space splits the value in two (argparse then reports "unrecognized arguments"), a quote
    breaks the shell string (shlex "No closing quotation"), and ``$``, the backquote, the
    backslash, ``; & | * ? ~ ( )`` are interpreted by bash. The empty string is not safe
    either: the launchers drop empty values (entrypoint_proto.py:140, entrypoint.py:176).
    """
    return re.fullmatch(LAUNCHER_SAFE_PATTERN, value) is not None


def launcher_problem(what: str, value: str, fix: str) -> Optional[str]:
    """A step-1 message when ``value`` cannot pass through TAO's launcher, else None.

    Args:
        what: What the value is, e.g. "the workspace path".
        value: The value as it would reach a TAO command.
        fix: How to fix it.
    """
    if launcher_safe(value):
        return None
    return (
        f"{what} {value!r} cannot pass through TAO's launcher, which joins every argument into "
        "one `bash -c '...'` string and splits it again: it may hold only "
        f"{LAUNCHER_SAFE_CHARACTERS} (no spaces or quotes). {fix}"
    )


class TaoCommandError(RuntimeError):
    """A TAO command could not start, exited non-zero, or reported ``Execution status: FAIL``."""


def model_key() -> str:
    """Returns the TAO model key (``-k``) from the environment, or "" when none is configured."""
    return os.environ.get(MODEL_KEY_ENV, "")


tao_version = routes.step_version  # the tao.version the step image runs


def default_command(command_env: str) -> str:
    """The command ``command_env`` names when it is unset: the TAO version's route default."""
    commands = routes.commands_for(tao_version())
    return {
        TAO_ENTRYPOINT_ENV: commands.entrypoint,
        TAO_CONVERTER_ENV: commands.converter,
        TAO_DEPLOY_ENTRYPOINT_ENV: commands.deploy_entrypoint,
    }.get(command_env, "")


def key_args(*, required_by_3x: bool = False) -> List[str]:
    """Returns ``["-k", key]`` when a model key is configured, else ``[]`` (TAO 5 needs none).

    TAO 5.0 accepts an optional ``-k`` on every command it is passed to here
    (tao_tensorflow1_backend 5.0 makenet/scripts/train.py:92, evaluate.py:64,
    inference.py:50, common/magnet_prune.py:70, common/export/app.py:48).

    Args:
        required_by_3x: The command declares ``-k`` required in TAO 3.x (evaluate, inference:
            docs/tao-contract.md); then a missing key on 3.x fails here, before TAO
            would fail with an argparse usage error.

    Raises:
        TaoCommandError: ``required_by_3x`` on TAO 3.x without a key.
    """
    key = model_key()
    if key:
        return ["-k", key]
    if required_by_3x and tf1.line().key_required:
        raise TaoCommandError(
            f"{MODEL_KEY_ENV} is empty, but TAO 3.x evaluate and inference require -k: set the "
            "model key Secret (ngc.modelKey, default nvidia_tlt) or secrets.modelKey."
        )
    if "tao_kfp.cpu_backend" in os.environ.get("TAO_ENTRYPOINT", ""):
        return []  # the CPU backend needs no key: no warning in every step of a local run
    print(
        f"{MODEL_KEY_ENV} is not set: running TAO without -k. TAO 3.x needs a key; "
        "set secrets.modelKey in the environment config.",
        flush=True,
    )
    return []


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replaces every non-empty secret value in ``text`` by ``****``."""
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _all_secrets(extra: Sequence[str]) -> List[str]:
    return [*extra, *(os.environ.get(name, "") for name in SECRET_ENV_NAMES)]


def command_prefix(command_env: str = "TAO_ENTRYPOINT") -> List[str]:
    """Returns the command configured in ``command_env`` split into words."""
    return shlex.split(os.environ.get(command_env) or default_command(command_env))


def run_tao(
    args: Sequence[str],
    *,
    command_env: str = "TAO_ENTRYPOINT",
    log_path: Optional[str | Path] = None,
    secrets: Sequence[str] = (),
) -> str:
    """Runs ``<command from command_env> <args>`` and returns its redacted output.

    Output is streamed line by line to stdout (and appended to ``log_path`` if given) with
    every secret value replaced by ``****``; the values of the NGC and model key variables
    are always treated as secrets.

    Args:
        args: Arguments after the command, e.g. ``["train", "-e", spec, "-r", out]``.
        command_env: Environment variable holding the command (``TAO_ENTRYPOINT`` or
            ``TAO_CONVERTER``).
        log_path: Optional file that receives a copy of the redacted output.
        secrets: Extra values to redact.

    Returns:
        The full redacted output (stdout and stderr interleaved).

    Raises:
        TaoCommandError: The command is missing, exits non-zero, or prints
            ``Execution status: FAIL``.
    """
    all_secrets = _all_secrets(secrets)
    command = command_prefix(command_env) + [str(a) for a in args]
    # Each word before quoting: shlex.join would split a key holding a ' across quotes.
    shown = shlex.join(redact(word, all_secrets) for word in command)
    print(f"+ {shown}", flush=True)
    env = dict(os.environ)
    # TAO 5 sends telemetry after each task; a training cluster should not phone home.
    env.setdefault("TELEMETRY_OPT_OUT", "yes")
    # The TAO step image puts its isolated Python first on PATH for KFP; TAO gets its own PATH
    # back so any `python3` it starts is TAO's (images/tao-step sets TAO_KFP_SYSTEM_PATH).
    if env.get(SYSTEM_PATH_ENV):
        env["PATH"] = env[SYSTEM_PATH_ENV]
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            env=env,
        )
    except FileNotFoundError as error:
        raise TaoCommandError(
            f"command {command[0]!r} not found (from {command_env}). Set tao.entrypoint / "
            "tao.converter in the environment config to the command of your TAO image: "
            "'classification' for TAO 3.x, 'classification_tf1' for 5.x, 'classification_pyt' "
            "for 6.x."
        ) from error

    lines: List[str] = []
    log_file = None
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        assert process.stdout is not None
        for raw_line in process.stdout:
            line = redact(raw_line, all_secrets)
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()
            if log_file is not None:
                log_file.write(line)
        returncode = process.wait()
    finally:
        if log_file is not None:
            log_file.close()

    output = "".join(lines)
    failed_marker = any(line.strip().endswith(FAIL_MARKER) for line in lines)
    if returncode != 0 or failed_marker:
        tail = "".join(lines[-20:])
        reason = f"exit code {returncode}" if returncode != 0 else f"'{FAIL_MARKER}'"
        raise TaoCommandError(f"TAO command failed ({reason}): {shown}\nLast output:\n{tail}")
    return output
