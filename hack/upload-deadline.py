#!/usr/bin/env python3
"""Prints how far `tao-kfp upload` runs past its deadline against slow and silent servers.

Usage: .venv/bin/python hack/upload-deadline.py [DEADLINE_SECONDS]   (default 10)

Each case runs the real uploader (shipped retry policy) against a test double from
tests/doubles/kfp_api.py. Figures measured on a loaded machine are inflated; the tests only
assert a generous bound, this script gives the number.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from doubles.kfp_api import API, FakeKfpApi, SilentServer  # noqa: E402
from tao_kfp.resources import shipped_file  # noqa: E402
from tao_kfp.upload import main  # noqa: E402


def timed_upload(url: str, deadline: float) -> tuple:
    argv = [
        "--package", str(shipped_file("pipelines/tao-classification.yaml")),
        "--host", url,
        "--pipeline-name", "deadline-check",
        "--version-prefix", "0.0.0",
        "--deadline-seconds", str(deadline),
    ]  # fmt: skip
    started = time.monotonic()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, time.monotonic() - started


def cases():
    """(name, start a server and return (url, stop))."""

    def silent(trickle: float):
        server = SilentServer(trickle_seconds=trickle)
        return server.url, server.stop

    def double(*, listening: bool = True, **failure):
        api = FakeKfpApi().start(listening=listening)
        if failure:
            api.fail(10**6, **failure)
        return api.url, api.stop

    yield "accepts, never answers", lambda: silent(0.0)
    yield "trickles 1 byte / 0.5 s", lambda: silent(0.5)
    yield (
        "holds the upload POST",
        lambda: double(
            status=503, method="POST", path=f"{API}/pipelines/upload", hang_seconds=3600
        ),
    )
    yield "answers 503 forever", lambda: double(status=503)
    yield "refuses connections", lambda: double(listening=False)


def main_() -> int:
    deadline = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    worst = 0.0
    for name, start in cases():
        url, stop = start()
        try:
            status, elapsed = timed_upload(url, deadline)
        finally:
            stop()
        worst = max(worst, elapsed - deadline)
        print(f"{name:26s} exit {status}  {elapsed:6.2f} s  overrun {elapsed - deadline:+.2f} s")
    print(f"worst overrun of a {deadline:g} s deadline: {worst:+.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main_())
