"""Each of the uploader's fixes is needed against KFP's own server: without it, the suite fails.

Runs a test of this suite again with the uploader as it was before one fix
(pre_fix_upload.py) and requires that test to fail, for the reason the real server gives.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.kfp_server

MODULE = "tests/kfp_server/test_upload_real_server.py"

CASES = {
    # Deleting the old recurring run with default options: the garbage collector deletes the
    # Workflow it owns (2.0.5 also ignores propagation_policy, test_api_contract.py).
    "schedule-delete": (
        "test_moving_the_schedule_keeps_the_workflow_the_old_schedule_started",
        "were deleted with it",
    ),
    # Deleting the old recurring run as soon as the API lists no going run of it: a Workflow
    # the persistence agent has not reported yet is deleted with it (before 2.16 only).
    "schedule-grace": (
        "tests/kfp_server/test_schedule_window.py::"
        "test_a_run_the_api_does_not_list_yet_survives_the_move",
        "were deleted with it",
    ),
    # "61 3 * * *" reaches the server, which refuses it (robfig/cron) after the upload.
    "cron-ranges": (
        "test_an_out_of_range_cron_is_refused_before_anything_is_uploaded",
        "above maximum (59)",
    ),
    # "epochs": "three" reaches the server, which refuses the run after the upload.
    "run-param-types": (
        "test_a_run_parameter_of_the_wrong_type_is_refused_before_anything_is_uploaded",
        "input parameter epochs requires type",
    ),
}
# From 2.16 the delete orphans the runs: there is no window, and that uploader passes.
FIXED_BY_THE_SERVER_FROM = {"schedule-grace": (2, 16, 0)}


@pytest.mark.parametrize("fix", sorted(CASES))
def test_the_suite_fails_without_the_fix(kfp_server, fix):
    test, reason = CASES[fix]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "kfp_server",
            "-p",
            "no:cacheprovider",
            "-q",
            test if "/" in test else f"{MODULE}::{test}",
        ],  # fmt: skip
        env={**os.environ, "KFP_E2E_PRE_FIX": fix},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1:]
    if kfp_server.release >= FIXED_BY_THE_SERVER_FROM.get(fix, (99,)):
        assert result.returncode == 0, result.stdout
        return
    assert result.returncode == 1 and summary and "1 failed" in summary[0], result.stdout
    assert reason in result.stdout, result.stdout
