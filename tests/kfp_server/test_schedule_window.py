"""The schedule move against KFP's own server when a run exists that the API does not list yet.

Before 2.16 the uploader disables the old recurring run, reads its runs from the API and deletes
it only when none is going (deleting lets the garbage collector delete the Workflows the
ScheduledWorkflow owns). On 2.0.5 the controller creates each Workflow itself and the
persistence agent reports it to the API server later, so a Workflow created just before the
disable took effect is missing from ``list_runs`` for a moment: deleting then kills it.

The suite makes that moment last: it stops the persistence agent (SIGSTOP) before the schedule
starts its Workflow, so the API lists no run while the Workflow exists, which is what the
uploader sees inside the window. It resumes the agent (SIGCONT) once the moving upload says it is
waiting its grace (or has ended), as an agent that lags less than the grace would. From 2.16 the
delete orphans the runs, no agent runs here, and the Workflow must survive all the same.
See docs/schedule-lifecycle.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from .conftest import PACKAGE, TAO_KFP
from .test_upload_real_server import (
    PREFIX,
    RUN_PARAMS,
    _assert_still_there,
    _eventually,
    _owned_by,
    _workflows,
)

pytestmark = pytest.mark.kfp_server

# Short enough for the suite, long enough for the resumed agent to report the Workflow (it
# queues it for 1 s, and re-lists every Workflow each 30 s at worst).
GRACE_SECONDS = 20


def _agent_pid(kfp_server) -> Optional[int]:
    """The persistence agent's pid (hack/kfp-server/up.sh starts it for 2.0.5 only)."""
    path = Path(kfp_server.env["KFP_STATE"]) / "run" / "persistenceagent.pid"
    if not path.is_file():
        assert kfp_server.release >= (2, 1, 0), f"KFP {kfp_server.release} needs its agent"
        return None
    pid = int(path.read_text())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "persistence", pid
    return pid


@contextmanager
def _paused(pid: Optional[int]) -> Iterator[None]:
    """The agent stopped inside the block (and resumed on the way out, whatever happens)."""
    if pid is not None:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


def _uploader() -> List[str]:
    """The uploader KfpServer.upload runs (pre_fix_upload.py under test_deliberate_failures)."""
    pre_fix = os.environ.get("KFP_E2E_PRE_FIX")
    if pre_fix:
        return [sys.executable, str(Path(__file__).with_name("pre_fix_upload.py")), pre_fix]
    return [str(TAO_KFP), "upload"]


def _move_resuming_the_agent(kfp_server, agent: Optional[int], *args: str) -> str:
    """Runs the moving upload; resumes the agent when it starts its grace, or when it ends."""
    upload = subprocess.Popen(
        [*_uploader(), "--host", kfp_server.host, "--deadline-seconds", "120", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: List[str] = []

    def read() -> None:
        for line in upload.stdout:
            lines.append(line)
            if agent is not None and "before deleting" in line:
                os.kill(agent, signal.SIGCONT)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    status = upload.wait(timeout=180)
    reader.join(timeout=10)
    output = "".join(lines)
    if status != 0:
        pytest.fail(f"the moving upload failed ({status}):\n{output}")
    return output


def _runs_of(client, experiment_id: str, recurring_run_id: str) -> list:
    runs = client.list_runs(experiment_id=experiment_id, page_size=100).runs or []
    return [r for r in runs if r.recurring_run_id == recurring_run_id]


def test_a_run_the_api_does_not_list_yet_survives_the_move(
    kfp_server, client, custom_objects, name, changed_package
):
    common = ["--pipeline-name", name, "--version-prefix", PREFIX,
              "--run-params", json.dumps(RUN_PARAMS), "--recurring-cron", "*/5 * * * * *",
              "--schedule-grace-seconds", str(GRACE_SECONDS)]  # fmt: skip
    agent = _agent_pid(kfp_server)
    with _paused(agent):
        kfp_server.upload("--package", str(PACKAGE), *common)
        experiment = client.get_experiment(experiment_name=name)
        [old] = client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
        started = _eventually(
            "a Workflow started by the first schedule",
            lambda: _owned_by(_workflows(custom_objects, ""), old.recurring_run_id),
        )
        if agent is not None:
            # The window, held open: the Workflow exists, the API lists no run of the schedule.
            assert _runs_of(client, experiment.experiment_id, old.recurring_run_id) == []
        moved = _move_resuming_the_agent(kfp_server, agent, "--package", str(changed_package),
                                         *common)  # fmt: skip

    _assert_still_there(started, lambda: _workflows(custom_objects, ""), f":\n{moved}")

    left = {r.recurring_run_id: r.status for r in client.list_recurring_runs(
        experiment_id=experiment.experiment_id).recurring_runs}  # fmt: skip
    [new] = [rid for rid, status in left.items() if status == "ENABLED"]
    if kfp_server.release >= (2, 16, 0):
        assert left == {new: "ENABLED"}, moved  # deleted with propagation_policy ORPHAN
        return
    # Listed once the agent ran again during the grace: the old schedule stays disabled.
    assert left == {old.recurring_run_id: "DISABLED", new: "ENABLED"}, moved
    assert f"waiting {GRACE_SECONDS} s before deleting" in moved and "still going" in moved, moved
    assert _runs_of(client, experiment.experiment_id, old.recurring_run_id), moved
