"""``tao-kfp upload``: put the pipeline into a Kubeflow Pipelines API as a named version.

The chart's post-install/post-upgrade hook Job runs it, and ``helm test`` runs it with
``--verify-only``. The package is adapted to the environment config and uploaded as the version
``<version-prefix>-<first 10 hex digits of sha256(adapted YAML)>``, so an install or upgrade that
changes nothing creates nothing. Connection errors, timeouts and HTTP 5xx answers are retried with
exponential backoff, and one deadline (``--deadline-seconds``) bounds the whole command: each
request's connect and read timeout is at most the time left, and urllib3 retries nothing below
ours. After a 409 or 5xx answer to a create, the object is looked up again before retrying, so
retried and racing creates end with one object on current (409) and older (500) servers alike.
Any other 4xx answer fails at once with the server's message.

The package is adapted to the KFP backend version the server reports (``tag_name`` of
``GET /apis/v2beta1/healthz``, or a known release ``commit_sha``, or ``--kfp-version`` when the
server says "unknown" as stock images before 2.16.0 do; with none of them the upload stops):
fields that backend cannot take are removed or replaced and what is lost is printed
(``tao_kfp.kfp_backends.adapt_for_backend``).

Usage (one command):
    tao-kfp upload --package files/pipelines/tao_classification.yaml --config env.yaml
        --host http://ml-pipeline.kubeflow:8888 --pipeline-name tao-classification
        --version-prefix 0.1.0
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

from tao_kfp.upload.api import KfpApi, RetryPolicy
from tao_kfp.upload.errors import UploadError
from tao_kfp.upload.inputs import (
    DEFAULT_TOKEN_PATH,
    TOKEN_AUDIENCE,
    TOKEN_PATH_ENV,
    Inputs,
    check_deadline_seconds,
    check_inputs,
    check_multi_user_settings,
    version_name_for,
)
from tao_kfp.upload.reconcile import (
    SCHEDULE_GRACE_SECONDS,
    disable_recurring_runs,
    ensure_experiment,
    ensure_pipeline,
    ensure_recurring_run,
    ensure_version,
    recurring_run_name,
    remove_recurring_runs,
    start_run,
    verify,
)
from tao_kfp.upload.transport import hard_deadline, scratch_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers this subcommand's flags."""
    what = parser.add_argument_group("what to upload")
    what.add_argument("--package", required=True, help="compiled pipeline YAML (tao-kfp compile)")
    what.add_argument(
        "--config",
        help="environment config YAML used to adapt the package (default: upload it as it is)",
    )
    what.add_argument("--pipeline-name", required=True, help="KFP pipeline name")
    what.add_argument(
        "--version-prefix",
        required=True,
        help="version names are <prefix>-<first 10 hex of the adapted package's sha256>",
    )
    what.add_argument("--description", help="description of the pipeline and its versions")

    where = parser.add_argument_group("where and how to connect")
    where.add_argument(
        "--host", required=True, help="KFP API URL, e.g. http://ml-pipeline.kubeflow:8888"
    )
    where.add_argument(
        "--namespace",
        help="profile namespace of a multi-user Kubeflow (leave unset for standalone KFP)",
    )
    where.add_argument(
        "--token-path",
        help=(
            f"ServiceAccount token file (audience {TOKEN_AUDIENCE}) sent as a Bearer token "
            f"(default: ${TOKEN_PATH_ENV}, else {DEFAULT_TOKEN_PATH} if it exists, else no auth)"
        ),
    )
    where.add_argument("--ca-bundle", help="CA certificates (PEM) to verify an https --host")
    where.add_argument(
        "--kfp-version",
        help="KFP backend version (e.g. 2.15.0) to assume when the server reports 'unknown' "
        "(custom builds); the server's own report wins otherwise",
    )
    where.add_argument(
        "--deadline-seconds",
        type=float,
        default=600.0,
        help="the whole command ends within this many seconds, retries included (default 600)",
    )

    after = parser.add_argument_group("after a new version is uploaded")
    after.add_argument(
        "--experiment", help="experiment for runs (default: the pipeline name); created if absent"
    )
    after.add_argument(
        "--run-first", action="store_true", help="start one run of a newly created version"
    )
    after.add_argument(
        "--run-params", help="pipeline parameters as a JSON object, e.g. '{\"a\": 1}'"
    )
    after.add_argument(
        "--recurring-cron",
        help="keep one recurring run (named after the pipeline) on this cron schedule, running "
        'the uploaded version, e.g. "0 0 * * *"; an older one is replaced',
    )
    after.add_argument(
        "--schedule-grace-seconds",
        type=float,
        default=SCHEDULE_GRACE_SECONDS,
        help="KFP before 2.16: a replaced recurring run is deleted only when none of its runs is "
        "listed as going this many seconds after it was disabled (default %(default)g); 0 does "
        "not wait",
    )
    after.add_argument(
        "--disable-recurring-run",
        action="store_true",
        help="only disable the pipeline's recurring run (helm uninstall); creates nothing",
    )

    check = parser.add_argument_group("checking an install (helm test)")
    check.add_argument(
        "--verify-only",
        action="store_true",
        help="only check that the API answers and this package+config's version exists",
    )
    check.add_argument("--upload-job", help="name of the upload Job, quoted in --verify-only hints")


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand."""
    return run_with_policy(args, RetryPolicy())


def main(argv: Optional[List[str]] = None, *, policy: Optional[RetryPolicy] = None) -> int:
    """Parses ``argv`` as ``tao-kfp upload`` flags and runs them with ``policy``."""
    parser = argparse.ArgumentParser(prog="tao-kfp upload", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_with_policy(parser.parse_args(argv), policy or RetryPolicy())


def run_with_policy(args: argparse.Namespace, policy: RetryPolicy) -> int:
    """Runs the subcommand the flags choose within ``--deadline-seconds``, reading included.

    An ``UploadError`` becomes one line: status 2 for bad flags or input files (nothing was
    sent), 1 for a failure talking to the API.
    """
    try:
        check_deadline_seconds(args.deadline_seconds)
    except UploadError as error:
        return _report(args, error, status=2)
    with hard_deadline(args.deadline_seconds, args.host) as stage:
        stage.reading = "the inputs (--package, --config, --token-path, --ca-bundle)"
        try:
            inputs = check_inputs(args)
            stage.reading = None
            _run(args, inputs, policy)
        except UploadError as error:
            # One handler: the deadline's signal may land between two statements, and the
            # stage it names (still reading: nothing sent) is what decides the status.
            return _report(args, error, status=2 if stage.reading else 1)
    return 0


def _run(args: argparse.Namespace, inputs: Inputs, policy: RetryPolicy) -> None:
    if args.disable_recurring_run:
        disable_recurring_run(inputs, policy)
    elif args.verify_only:
        verify_only(inputs, policy)
    else:
        upload(inputs, policy)


def _report(args: argparse.Namespace, error: UploadError, *, status: int) -> int:
    message = " ".join(str(error).split())  # one line, whatever the server sent
    if args.disable_recurring_run:
        # A pre-delete hook that fails blocks `helm uninstall`; KFP being gone must not.
        print(
            f"tao-kfp upload: warning: the recurring run may still be enabled: {message}",
            file=sys.stderr,
        )
        return 0
    print(f"tao-kfp upload: error: {message}", file=sys.stderr)
    return status


def upload(inputs: Inputs, policy: RetryPolicy) -> None:
    """Uploads the package as a version; then the run, schedule and clean-up the flags ask for."""
    with _connected(inputs, policy) as (kfp, reported, scratch):
        version_name, package_file, backend = _package_for_server(inputs, reported, scratch)
        pipeline = ensure_pipeline(kfp, inputs.pipeline_name, package_file, inputs.description)
        version, created = ensure_version(
            kfp, pipeline, version_name, package_file, inputs.description
        )
        schedule = recurring_run_name(inputs.pipeline_name)
        if not inputs.cron:
            # No schedule wanted (any more): remove the one an earlier revision created.
            experiment = kfp.find_experiment(inputs.experiment_name)
            if experiment is not None:
                remove_recurring_runs(
                    kfp, experiment, schedule, None, backend, inputs.schedule_grace_seconds
                )
        if not (inputs.experiment or inputs.run_first or inputs.cron):
            return
        experiment = ensure_experiment(kfp, inputs.experiment_name)
        if inputs.run_first:
            if created:
                start_run(kfp, experiment, pipeline, version, inputs.run_params)
            else:
                print("Run not started: the version is unchanged (--run-first runs new versions).")
        if inputs.cron:
            ensure_recurring_run(
                kfp, experiment, version, schedule, inputs.cron, inputs.run_params, backend,
                inputs.schedule_grace_seconds,
            )  # fmt: skip


def verify_only(inputs: Inputs, policy: RetryPolicy) -> None:
    """``--verify-only`` (helm test): checks that this package+config's version exists."""
    with _connected(inputs, policy) as (kfp, reported, scratch):
        version_name, _, _ = _package_for_server(inputs, reported, scratch)
        verify(kfp, inputs.pipeline_name, version_name, inputs.upload_job)


def disable_recurring_run(inputs: Inputs, policy: RetryPolicy) -> None:
    """``--disable-recurring-run`` (helm uninstall): disables the schedule, creates nothing."""
    with _connected(inputs, policy) as (kfp, _, _):
        disable_recurring_runs(kfp, inputs.experiment_name, inputs.pipeline_name)


@contextlib.contextmanager
def _connected(
    inputs: Inputs, policy: RetryPolicy
) -> Iterator[Tuple[KfpApi, Tuple[str, str], Path]]:
    """Yields (API, (tag_name, commit_sha), scratch dir) once it answered, within the deadline."""
    with scratch_dir() as scratch:  # run_with_policy's hard deadline covers this
        kfp = KfpApi(
            host=inputs.host,
            namespace=inputs.namespace,
            token_path=inputs.token_path,
            ca_bundle=inputs.ca_bundle,
            deadline_seconds=inputs.deadline_seconds,
            policy=policy,
            scratch=scratch,
        )
        health = kfp.healthz()
        multi_user = bool(health.get("multi_user"))
        tag = str(health.get("tag_name") or "unknown")
        commit = str(health.get("commit_sha") or "unknown")
        print(
            f"KFP API at {inputs.host} answered (version: {tag}, multi-user: "
            f"{'yes' if multi_user else 'no'}, namespace: {inputs.namespace or '-'}, "
            f"token: {'yes' if inputs.token_path else 'no'})."
        )
        if multi_user:
            check_multi_user_settings(inputs.namespace, inputs.token_path)
        yield kfp, (tag, commit), scratch


def _package_for_server(
    inputs: Inputs, reported: Tuple[str, str], scratch: Path
) -> Tuple[str, str, Any]:
    """Adapts the package to the server's backend; returns (version name, file, backend)."""
    from tao_kfp.kfp_backends import adapt_for_backend
    from tao_kfp.package import dump_package

    text = inputs.package_text
    backend = _choose_backend(reported, inputs.stated_backend)
    if backend is not None:
        try:
            docs, lost = adapt_for_backend(inputs.package_docs, backend)
        except ValueError as error:  # below the floor
            raise UploadError(str(error)) from error
        for line in lost:
            print(line)
        if docs != inputs.package_docs:
            text = dump_package(docs)
    package_file = scratch / "pipeline.yaml"  # kfp and the API tell YAML by the extension
    package_file.write_text(text, encoding="utf-8")
    return version_name_for(inputs.version_prefix, text), str(package_file), backend


def _choose_backend(reported: Tuple[str, str], stated: Any) -> Any:
    """The backend to adapt for, and one line saying which and why; never a guess.

    ``tag_name`` says the version on stock images from 2.16.0 only: before that the release
    images answer "unknown" (backend/Dockerfile ``ARG TAG_NAME=unknown``; the release workflow
    passes the tag from 2.16.0). Then a known release ``commit_sha``, then the stated
    kfp.backendVersion decide; with neither, the upload stops: a package for a newer backend
    fails every run on 2.14/2.15, one for an older backend drops settings a newer one applies.
    """
    from tao_kfp.kfp_backends import RELEASE_COMMITS, KfpBackend

    tag, commit = reported
    try:
        backend = KfpBackend.parse(tag) if tag != "unknown" else None
    except ValueError:
        backend = None
    why = f"healthz tag_name {tag!r}"
    if backend is None and commit in RELEASE_COMMITS:
        backend, why = KfpBackend.parse(RELEASE_COMMITS[commit]), f"healthz commit_sha {commit}"
    if backend is not None:
        ignored = f"; --kfp-version {stated} is not used" if stated not in (None, backend) else ""
        print(f"Adapting for {backend.kubeflow()}: from {why}{ignored}.")
        return backend
    if stated is not None:
        print(
            f"Adapting for {stated.kubeflow()}: from --kfp-version (kfp.backendVersion); the "
            f"server says no version ({why}, commit_sha {commit!r})."
        )
        return stated
    raise UploadError(
        f"The KFP API says no version ({why}, commit_sha {commit!r}; stock KFP images before "
        "2.16.0 answer 'unknown') and kfp.backendVersion (--kfp-version) is not set. Set it to "
        "the KFP version your Kubeflow ships: 1.8 -> 2.0.5, 1.9 -> 2.2.0, 1.10 -> 2.5.0, "
        "26.03 -> 2.16.0 (or read the ml-pipeline image tag: kubectl get deploy ml-pipeline "
        "-n kubeflow -o jsonpath='{..image}'). The upload does not guess: a package for a "
        "newer backend fails every run on 2.14/2.15."
    )
