"""What ``tao-kfp upload`` makes true on the server: the pipeline, its versions, the schedule.

Each function looks first and creates only what is missing, so a repeated install or upgrade
changes nothing and a racing one ends with one object (``KfpApi.create``).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from tao_kfp.upload.api import SCHEDULE_SUFFIX, KfpApi
from tao_kfp.upload.errors import UploadError

# Orphaning delete of a recurring run: DeleteRecurringRunRequest.propagation_policy, from KFP
# 2.16.0 (backend/api/v2beta1/recurring_run.proto). Each run's Workflow has an owner reference to
# the ScheduledWorkflow, so a plain delete lets the garbage collector delete runs in flight.
ORPHAN_DELETE_FROM = (2, 16, 0)
# A run counts as going unless it has ended: KFP 2.0.5 reports no state at all (the API omits
# RUNTIME_STATE_UNSPECIFIED) until Argo's controller gives its Workflow a phase.
_ENDED_RUN_STATES = {"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"}
# Before 2.16, how long a recurring run stays disabled before it may be deleted: a run its
# controller started just before the disable took effect is listed by then. On 2.0.5 the
# persistence agent reports the controller's Workflows from a 1 s rate-limited queue with retries
# and re-reports every Workflow each 30 s (its informers' resync); from 2.1 the run is inserted
# just after its Workflow is created (docs/schedule-lifecycle.md).
SCHEDULE_GRACE_SECONDS = 60.0
# Time kept after the grace for listing the runs again and deleting, within --deadline-seconds.
_AFTER_GRACE_SECONDS = 15.0


def ensure_pipeline(kfp: KfpApi, name: str, package_file: str, description: Optional[str]) -> Any:
    """Returns the pipeline called ``name``, creating it from the package if absent."""
    pipeline = kfp.find_pipeline(name)
    if pipeline is not None:
        print(f"Pipeline '{name}' exists (id {pipeline.pipeline_id}).")
        return pipeline
    pipeline, created = kfp.create(
        f"create pipeline '{name}'",
        lambda: kfp.client.upload_pipeline(
            package_file, pipeline_name=name, description=description, namespace=kfp.namespace
        ),
        lambda: kfp.find_pipeline(name),
    )
    _require_id(pipeline.pipeline_id, "pipeline", kfp.host)
    if not created:
        print(f"Pipeline '{name}' exists (id {pipeline.pipeline_id}, created concurrently).")
        return pipeline
    # The upload API names the first version after the pipeline; ours is added next.
    print(
        f"Pipeline '{name}' created (id {pipeline.pipeline_id}); KFP also stored this upload "
        f"as its first version '{name}'."
    )
    return pipeline


def ensure_version(
    kfp: KfpApi, pipeline: Any, name: str, package_file: str, description: Optional[str]
) -> Tuple[Any, bool]:
    """Returns (version called ``name``, whether it was created now)."""
    version = kfp.find_version(pipeline.pipeline_id, name)
    if version is not None:
        print(
            f"Pipeline version '{name}' unchanged (id {version.pipeline_version_id}): this package "
            "and config are already uploaded, nothing created."
        )
        return version, False
    # The name carries the content hash, so an existing version of that name has our content.
    version, created = kfp.create(
        f"upload pipeline version '{name}'",
        lambda: kfp.client.upload_pipeline_version(
            package_file,
            pipeline_version_name=name,
            pipeline_id=pipeline.pipeline_id,
            description=description,
        ),
        lambda: kfp.find_version(pipeline.pipeline_id, name),
    )
    _require_id(version.pipeline_version_id, "pipeline version", kfp.host)
    if not created:
        print(
            f"Pipeline version '{name}' unchanged (id {version.pipeline_version_id}, "
            "uploaded concurrently)."
        )
        return version, False
    print(
        f"Pipeline version '{name}' created (id {version.pipeline_version_id}) in pipeline "
        f"'{pipeline.name or pipeline.display_name}' (id {pipeline.pipeline_id})."
    )
    return version, True


def ensure_experiment(kfp: KfpApi, name: str) -> Any:
    """Returns the experiment called ``name``, creating it if absent."""
    experiment = kfp.find_experiment(name)
    if experiment is not None:
        print(f"Experiment '{name}' exists (id {experiment.experiment_id}).")
        return experiment
    experiment, created = kfp.create(
        f"create experiment '{name}'",
        lambda: kfp.client.create_experiment(name, namespace=kfp.namespace),
        lambda: kfp.find_experiment(name),
    )
    _require_id(experiment.experiment_id, "experiment", kfp.host)
    how = "created" if created else "exists"
    concurrently = "" if created else ", created concurrently"
    print(f"Experiment '{name}' {how} (id {experiment.experiment_id}{concurrently}).")
    return experiment


def start_run(
    kfp: KfpApi, experiment: Any, pipeline: Any, version: Any, params: Dict[str, Any]
) -> None:
    """Starts one run of the version."""
    name = f"{pipeline.name or pipeline.display_name} {version.name or version.display_name}"
    run, started = kfp.create(
        f"start run '{name}'",
        lambda: kfp.client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=name,
            params=params,
            pipeline_id=pipeline.pipeline_id,
            version_id=version.pipeline_version_id,
        ),
        # The name carries the version hash: a run of that name is this version's first run.
        lambda: kfp.find_run(experiment.experiment_id, name),
    )
    how = "started" if started else "exists (started by an earlier attempt)"
    print(f"Run '{name}' {how} (id {run.run_id}) in experiment '{experiment.display_name}'.")


def recurring_run_name(pipeline_name: str) -> str:
    """The one recurring run of a release is named after its pipeline, not a version."""
    return pipeline_name + SCHEDULE_SUFFIX


def ensure_recurring_run(
    kfp: KfpApi,
    experiment: Any,
    version: Any,
    name: str,
    cron: str,
    params: Dict[str, Any],
    backend: Any = None,
    grace_seconds: float = SCHEDULE_GRACE_SECONDS,
) -> None:
    """Keeps exactly one enabled recurring run ``name``, on ``version``, ``cron`` and ``params``.

    On upgrade it moves to the new version, on rollback (the post-rollback hook runs this
    again with the older package) back to the older one. KFP cannot edit a recurring run, so
    moving is: create the new one, then delete the others. An unchanged upgrade changes nothing.
    """

    def fits(recurring: Any) -> bool:
        reference = recurring.pipeline_version_reference
        trigger = recurring.trigger.cron_schedule if recurring.trigger else None
        parameters = recurring.runtime_config.parameters if recurring.runtime_config else None
        return (
            reference is not None
            and reference.pipeline_version_id == version.pipeline_version_id
            and trigger is not None
            and trigger.cron == cron
            and (parameters or {}) == params
            and recurring.status == "ENABLED"
        )

    existing = kfp.find_recurring_runs(experiment.experiment_id, name)
    keep = next((r for r in existing if fits(r)), None)
    if keep is not None:
        print(f"Recurring run '{name}' unchanged (id {keep.recurring_run_id}).")
    else:
        keep, _ = kfp.create(
            f"create recurring run '{name}'",
            lambda: kfp.client.create_recurring_run(
                experiment_id=experiment.experiment_id,
                job_name=name,
                cron_expression=cron,
                params=params,
                pipeline_id=version.pipeline_id,
                version_id=version.pipeline_version_id,
                max_concurrency=1,
                no_catchup=True,  # after downtime, run once rather than once per missed slot
            ),
            lambda: next(
                (r for r in kfp.find_recurring_runs(experiment.experiment_id, name) if fits(r)),
                None,
            ),
        )
        _require_id(keep.recurring_run_id, "recurring run", kfp.host)
        print(
            f"Recurring run '{name}' created (id {keep.recurring_run_id}, cron '{cron}', "
            f"version '{version.name or version.display_name}')."
        )
    remove_recurring_runs(kfp, experiment, name, keep, backend, grace_seconds)


def remove_recurring_runs(
    kfp: KfpApi,
    experiment: Any,
    name: str,
    keep: Any,
    backend: Any = None,
    grace_seconds: float = SCHEDULE_GRACE_SECONDS,
) -> None:
    """Removes the recurring runs called ``name`` except ``keep``, never killing a run.

    From 2.16.0 the delete orphans the runs it started. Before, each is disabled first and
    deleted only when, ``grace_seconds`` after it was seen disabled, none of its runs is listed
    as going; otherwise it stays disabled and a later upload deletes it
    (docs/schedule-lifecycle.md). ``backend`` None: a 2.16+ server.
    """
    old = [
        recurring
        for recurring in kfp.find_recurring_runs(experiment.experiment_id, name)
        if keep is None or recurring.recurring_run_id != keep.recurring_run_id
    ]
    if backend is None or backend.version >= ORPHAN_DELETE_FROM:
        for recurring in old:
            _delete(kfp, name, recurring, propagation_policy="ORPHAN")
            rid = recurring.recurring_run_id
            print(f"Recurring run '{name}' (id {rid}) deleted; the runs it started are kept.")
        return
    for recurring in old:
        if recurring.status != "DISABLED":
            kfp.call(
                f"disable recurring run '{name}' (id {recurring.recurring_run_id})",
                kfp.client.disable_recurring_run,
                recurring.recurring_run_id,
            )
    # Each is disabled now, by this upload or an earlier one: the grace counts from here.
    disabled = time.monotonic()
    idle = _without_going_runs(kfp, experiment, name, old, backend)
    if not idle:
        return
    ids = ", ".join(recurring.recurring_run_id for recurring in idle)
    if kfp.time_left() - grace_seconds < _AFTER_GRACE_SECONDS:
        print(
            f"Recurring run '{name}' (id {ids}) disabled, not deleted: waiting {grace_seconds:g} s "
            f"for runs KFP {backend} may not list yet would pass --deadline-seconds. The next "
            "upload deletes it."
        )
        return
    if grace_seconds > 0:
        print(
            f"Recurring run '{name}' (id {ids}) disabled; waiting {grace_seconds:g} s before "
            f"deleting it: KFP {backend} may not list yet a run its ScheduledWorkflow started "
            "just before the disable, and deleting it would delete that run (orphaning needs "
            "2.16.0).",
            flush=True,  # the chart's Job log shows why the upload pauses
        )
        time.sleep(max(0.0, disabled + grace_seconds - time.monotonic()))
    for recurring in _without_going_runs(kfp, experiment, name, idle, backend):
        _delete(kfp, name, recurring)
        print(
            f"Recurring run '{name}' (id {recurring.recurring_run_id}) deleted (none of its runs "
            f"was going {grace_seconds:g} s after the disable)."
        )


def _without_going_runs(
    kfp: KfpApi, experiment: Any, name: str, recurring_runs: List[Any], backend: Any
) -> List[Any]:
    """Those of ``recurring_runs`` with no listed run still going; says why for the others."""
    runs = (
        kfp.call(
            f"list the runs of experiment '{experiment.display_name}'",
            kfp.client.list_runs,
            experiment_id=experiment.experiment_id,
            page_size=1000,
        ).runs
        or []
    )
    idle = []
    for recurring in recurring_runs:
        rid = recurring.recurring_run_id
        going = [
            r.run_id for r in runs if r.recurring_run_id == rid and r.state not in _ENDED_RUN_STATES
        ]
        if not going:
            idle.append(recurring)
            continue
        print(
            f"Recurring run '{name}' (id {rid}) disabled, not deleted: its run(s) "
            f"{', '.join(going)} are still going and KFP {backend} deletes a recurring run's "
            "runs with it (orphaning needs 2.16.0). The next upload deletes it once they end."
        )
    return idle


def _delete(kfp: KfpApi, name: str, recurring: Any, **options: str) -> None:
    rid = recurring.recurring_run_id
    kfp.call(
        f"delete recurring run '{name}' (id {rid})",
        kfp.client._recurring_run_api.recurring_run_service_delete_recurring_run,
        rid,
        **options,
    )


def disable_recurring_runs(kfp: KfpApi, experiment_name: str, pipeline_name: str) -> None:
    """Disables the release's recurring run (helm uninstall); creates and deletes nothing."""
    name = recurring_run_name(pipeline_name)
    experiment = kfp.find_experiment(experiment_name)
    found = kfp.find_recurring_runs(experiment.experiment_id, name) if experiment else []
    if not found:
        print(f"No recurring run '{name}' in experiment '{experiment_name}': nothing to disable.")
    for recurring in found:
        if recurring.status == "DISABLED":
            print(f"Recurring run '{name}' (id {recurring.recurring_run_id}) already disabled.")
            continue
        kfp.call(
            f"disable recurring run '{name}'",
            kfp.client.disable_recurring_run,
            recurring.recurring_run_id,
        )
        print(
            f"Recurring run '{name}' (id {recurring.recurring_run_id}) disabled; enable it again "
            "in the KFP UI, or delete it there with its experiment."
        )


def verify(kfp: KfpApi, pipeline_name: str, version_name: str, upload_job: Optional[str]) -> None:
    """Checks that this package+config's pipeline version exists; creates nothing."""
    logs = f"kubectl logs job/{upload_job or '<upload Job>'}"
    where = f" in namespace '{kfp.namespace}'" if kfp.namespace else ""
    pipeline = kfp.find_pipeline(pipeline_name)
    if pipeline is None:
        raise UploadError(
            f"Pipeline '{pipeline_name}' is missing{where} at {kfp.host}. The chart's upload "
            f"Job creates it on install and upgrade: read its log ({logs}), fix the cause, then "
            "run `helm upgrade` again."
        )
    version = kfp.find_version(pipeline.pipeline_id, version_name)
    if version is None:
        raise UploadError(
            f"Pipeline '{pipeline_name}' (id {pipeline.pipeline_id}) has no version "
            f"'{version_name}' for this package and config at {kfp.host}. The upload Job did not "
            f"finish or has not run since the config changed: read its log ({logs}), fix the "
            "cause, then run `helm upgrade` again."
        )
    print(
        f"OK: pipeline '{pipeline_name}' (id {pipeline.pipeline_id}) has version "
        f"'{version_name}' (id {version.pipeline_version_id})."
    )


def _require_id(value: Optional[str], what: str, host: str) -> None:
    # A login page or dashboard answers 200 with HTML, which kfp turns into an empty object.
    if not value:
        raise UploadError(
            f"{host} answered the {what} request without an id: is --host the KFP API service "
            "rather than the Kubeflow dashboard or a login page?"
        )
