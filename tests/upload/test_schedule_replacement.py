"""Moving the release's recurring run to a new version never kills a run it started.

Each run's Workflow has an owner reference to its ScheduledWorkflow, so deleting a recurring
run with default options lets Kubernetes' garbage collector delete runs still in flight
(the KFP double models this: FakeKfpApi.state.workflows / garbage_collected). From KFP 2.16.0
the delete orphans them; before, the old recurring run is disabled and deleted only once none
of its runs is listed as going a grace period after the disable: a run its controller started
just before the disable may not be listed yet (tao_kfp.upload.reconcile.remove_recurring_runs,
docs/schedule-lifecycle.md).
"""

from __future__ import annotations

import pytest

from doubles.kfp_api import FakeKfpApi
from upload.test_upload import upload

# A short grace keeps these tests quick; the default is SCHEDULE_GRACE_SECONDS.
GRACE = ["--schedule-grace-seconds", "0.5"]
CRON = ["--experiment", "nightly", "--recurring-cron", "0 0 * * *", *GRACE]


def _schedules(api: FakeKfpApi) -> list:
    return list(api.state.recurring_runs.values())


@pytest.mark.parametrize("tag", ["2.16.1", "2.17.0"])
def test_from_2_16_the_old_schedule_is_deleted_and_its_running_run_orphaned(toy_packages, tag):
    first, second = toy_packages
    api = FakeKfpApi(tag_name=tag).start()
    try:
        assert upload(api.url, first, *CRON) == 0
        [old] = _schedules(api)
        running = api.start_scheduled_run(old["recurring_run_id"])

        assert upload(api.url, second, *CRON) == 0  # helm upgrade
    finally:
        api.stop()
    [new] = _schedules(api)
    assert new["recurring_run_id"] != old["recurring_run_id"]
    assert running in api.state.workflows and api.state.garbage_collected == []


# None: KFP 2.0.5 reports no state until Argo gives the Workflow a phase (make e2e-kfp).
@pytest.mark.parametrize("state", ["RUNNING", None])
def test_before_2_16_a_schedule_with_a_run_in_flight_is_only_disabled(toy_packages, capsys, state):
    first, second = toy_packages
    api = FakeKfpApi(tag_name="2.5.0").start()
    try:
        assert upload(api.url, first, *CRON) == 0
        [old] = _schedules(api)
        running = api.start_scheduled_run(old["recurring_run_id"], state)

        assert upload(api.url, second, *CRON) == 0  # helm upgrade while training runs
        assert running in api.state.workflows and api.state.garbage_collected == []
        states = {r["recurring_run_id"]: r["status"] for r in _schedules(api)}
        assert states[old["recurring_run_id"]] == "DISABLED"
        assert list(states.values()).count("ENABLED") == 1
        assert "still going" in capsys.readouterr().out

        api.state.runs[running]["state"] = "SUCCEEDED"
        assert upload(api.url, second, *CRON) == 0  # the next upload finishes the move
    finally:
        api.stop()
    assert old["recurring_run_id"] not in api.state.recurring_runs
    assert [r["status"] for r in _schedules(api)] == ["ENABLED"]


def test_clearing_the_cron_before_2_16_keeps_a_running_run(toy_packages):
    first, _ = toy_packages
    api = FakeKfpApi(tag_name="2.2.0").start()
    try:
        assert upload(api.url, first, *CRON) == 0
        [old] = _schedules(api)
        running = api.start_scheduled_run(old["recurring_run_id"])
        assert upload(api.url, first, "--experiment", "nightly", *GRACE) == 0
    finally:
        api.stop()
    assert running in api.state.workflows
    assert [r["status"] for r in _schedules(api)] == ["DISABLED"]


def test_before_2_16_a_run_the_server_does_not_list_yet_survives_the_move(toy_packages, capsys):
    """The window: KFP 2.0.5's controller created a Workflow just before the disable took
    effect, and its persistence agent reports it to the server a moment later. Listing the runs
    right after the disable misses it; deleting then lets the garbage collector delete it."""
    first, second = toy_packages
    grace = ["--schedule-grace-seconds", "2"]
    api = FakeKfpApi(tag_name="2.0.5").start()
    try:
        assert upload(api.url, first, *CRON) == 0
        [old] = _schedules(api)
        unlisted = api.start_scheduled_run(old["recurring_run_id"], None, listed_after_disable=1)

        assert upload(api.url, second, *CRON, *grace) == 0  # helm upgrade
        assert api.state.garbage_collected == [], "the run not listed yet was deleted"
        assert unlisted in api.state.workflows
        states = {r["recurring_run_id"]: r["status"] for r in _schedules(api)}
        assert states[old["recurring_run_id"]] == "DISABLED"
        assert list(states.values()).count("ENABLED") == 1
        out = capsys.readouterr().out
        assert "waiting 2 s before deleting" in out and "still going" in out

        api.state.runs[unlisted]["state"] = "FAILED"
        assert upload(api.url, second, *CRON, *grace) == 0  # a later upload finishes the move
    finally:
        api.stop()
    assert old["recurring_run_id"] not in api.state.recurring_runs
    assert [r["status"] for r in _schedules(api)] == ["ENABLED"]


def test_a_grace_the_deadline_cannot_hold_leaves_the_old_schedule_disabled(toy_packages, capsys):
    first, second = toy_packages
    api = FakeKfpApi(tag_name="2.0.5").start()
    try:
        assert upload(api.url, first, *CRON) == 0
        [old] = _schedules(api)
        # --deadline-seconds 20 (the test helper's) cannot hold a 60 s grace: no wait, no delete.
        assert upload(api.url, second, *CRON, "--schedule-grace-seconds", "60") == 0
    finally:
        api.stop()
    assert api.requests_to("DELETE", "/apis/v2beta1/recurringruns") == []
    states = {r["recurring_run_id"]: r["status"] for r in _schedules(api)}
    assert states[old["recurring_run_id"]] == "DISABLED"
    assert "would pass --deadline-seconds. The next upload deletes it" in capsys.readouterr().out
