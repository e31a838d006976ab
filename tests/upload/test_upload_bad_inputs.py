"""Bad flags and input files end ``tao-kfp upload`` with one line and status 2, within the
deadline, before any request (issue 19, section 5).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from tao_kfp.upload import main

from .test_upload import FAST, NAME, PREFIX


def run(capsys, package, *extra: str, deadline: str = "20", host: str = "http://127.0.0.1:9"):
    argv = ["--package", str(package), "--host", host, "--pipeline-name", NAME,
            "--version-prefix", PREFIX, "--deadline-seconds", deadline, *extra]  # fmt: skip
    status = main(argv, policy=FAST)
    err = capsys.readouterr().err
    return status, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("deadline", ["inf", "1e300", "nan", "0", "-1"])
def test_a_deadline_that_is_not_a_usable_number(capsys, toy_packages, deadline):
    """inf and 1e300 made signal.setitimer raise OverflowError (a traceback)."""
    status, err = run(capsys, toy_packages[0], deadline=deadline)
    assert status == 2 and "--deadline-seconds must be" in one_line(err)


@pytest.mark.parametrize("grace", ["inf", "nan", "-1"])
def test_a_schedule_grace_that_is_not_a_usable_number(capsys, toy_packages, grace):
    status, err = run(capsys, toy_packages[0], "--schedule-grace-seconds", grace)
    assert status == 2 and "--schedule-grace-seconds must be" in one_line(err)


@pytest.mark.parametrize(
    "make, flag, expected",
    [
        (lambda tmp: tmp, "--package", "is a directory"),  # was "no such file"
        (lambda tmp: tmp, "--config", "is a directory"),
        (lambda tmp: tmp, "--token-path", "is a directory"),
        (lambda tmp: Path("/dev/zero"), "--token-path", "not a regular file"),  # MemoryError
        (lambda tmp: _fifo(tmp), "--token-path", "not a regular file"),  # hung
        (lambda tmp: _fifo(tmp), "--package", "not a regular file"),
        (lambda tmp: _binary(tmp), "--token-path", "not a text token"),  # UnicodeDecodeError
        (lambda tmp: tmp / "missing", "--ca-bundle", "no such file"),
    ],
    ids=[
        "package-dir",
        "config-dir",
        "token-dir",
        "token-dev-zero",
        "token-fifo",
        "package-fifo",
        "token-binary",
        "ca-bundle-missing",
    ],  # fmt: skip
)
def test_input_files_that_cannot_be_read_as_such(
    capsys, toy_packages, tmp_path, make, flag, expected
):
    path = make(tmp_path)
    extra = [flag, str(path)]
    package = toy_packages[0]
    if flag == "--package":
        package, extra = path, []
    status, err = run(capsys, package, *extra)
    line = one_line(err)
    assert status == 2 and flag in line and expected in line


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--pipeline-name", "   ", "--pipeline-name is blank"),  # was "got 3"
        ("--pipeline-name", "two\nlines", "'\\n'"),
        ("--experiment", "runs\r", "'\\r'"),
        ("--version-prefix", "1.\n0", "'\\n'"),
    ],
)
def test_names_are_one_line_and_not_blank(capsys, toy_packages, flag, value, expected):
    extra = [flag, value]
    status, err = run(capsys, toy_packages[0], *extra)
    assert status == 2 and expected in one_line(err)


def test_an_unreadable_package_or_config_is_named(toy_packages, tmp_path):
    """PermissionError was a traceback. As root, a forked child drops to nobody to read."""
    import tao_kfp.package  # noqa: F401  imported while the files are readable

    secret = tmp_path / "package.yaml"
    secret.write_text(toy_packages[0].read_text())
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    for flags in (["--package", str(secret)], ["--package", str(toy_packages[0]), "--config",
                                                 str(secret)]):  # fmt: skip
        status, err = _as_another_user(
            ["--host", "http://127.0.0.1:9", "--pipeline-name", NAME, "--version-prefix",
             PREFIX, *flags]
        )  # fmt: skip
        assert status == 2 and "permission denied" in one_line(err).lower(), err


def _as_another_user(argv: list) -> tuple:
    """Runs main(argv) in a forked child as UID/GID 65534 (when root); (status, stderr)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 70
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            with os.fdopen(write_end, "w") as err, contextlib.redirect_stderr(err):
                status = main(argv, policy=FAST)
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        err = stream.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), err


def test_the_deadline_covers_reading_the_package(capsys, tmp_path, toy_packages):
    """A 30 MB package took far longer to parse than the deadline, which covered HTTP only."""
    text = toy_packages[0].read_text()
    filler = "".join(f"  k{i}: value number {i}\n" for i in range(1_000_000))
    big = tmp_path / "big.yaml"
    big.write_text(text.replace("pipelineInfo:", "filler:\n" + filler + "pipelineInfo:", 1))
    started = time.monotonic()
    status, err = run(capsys, big, deadline="1")
    seconds = time.monotonic() - started
    assert status == 2 and "reached while reading the inputs" in one_line(err)
    print(f"a {big.stat().st_size / 1e6:.0f} MB package, --deadline-seconds 1: {seconds:.1f} s")


def _fifo(tmp: Path) -> Path:
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    return fifo


def _binary(tmp: Path) -> Path:
    token = tmp / "token.bin"
    token.write_bytes(bytes(range(256)))
    return token
