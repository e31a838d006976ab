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
``GET /apis/v2beta1/healthz``, or ``--kfp-version`` for custom builds that report "unknown"):
fields that backend cannot take are dropped and what is lost is printed; backends below the
floor are refused (``tao_kfp.package.adapt_for_backend``).

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
    check_inputs,
    check_multi_user_settings,
    version_name_for,
)
from tao_kfp.upload.reconcile import (
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
    """Runs the subcommand the flags choose; an ``UploadError`` becomes one line and status 1."""
    try:
        inputs = check_inputs(args)
        if args.disable_recurring_run:
            disable_recurring_run(inputs, policy)
        elif args.verify_only:
            verify_only(inputs, policy)
        else:
            upload(inputs, policy)
    except UploadError as error:
        message = " ".join(str(error).split())  # one line, whatever the server sent
        if args.disable_recurring_run:
            # A pre-delete hook that fails blocks `helm uninstall`; KFP being gone must not.
            print(
                f"tao-kfp upload: warning: the recurring run may still be enabled: {message}",
                file=sys.stderr,
            )
            return 0
        print(f"tao-kfp upload: error: {message}", file=sys.stderr)
        return 1
    return 0


def upload(inputs: Inputs, policy: RetryPolicy) -> None:
    """Uploads the package as a version; then the run, schedule and clean-up the flags ask for."""
    with _connected(inputs, policy) as (kfp, tag, scratch):
        version_name, package_file = _package_for_server(inputs, tag, scratch)
        pipeline = ensure_pipeline(kfp, inputs.pipeline_name, package_file, inputs.description)
        version, created = ensure_version(
            kfp, pipeline, version_name, package_file, inputs.description
        )
        schedule = recurring_run_name(inputs.pipeline_name)
        if not inputs.cron:
            # No schedule wanted (any more): remove the one an earlier revision created.
            experiment = kfp.find_experiment(inputs.experiment_name)
            if experiment is not None:
                remove_recurring_runs(kfp, experiment, schedule, keep=None)
        if not (inputs.experiment or inputs.run_first or inputs.cron):
            return
        experiment = ensure_experiment(kfp, inputs.experiment_name)
        if inputs.run_first:
            if created:
                start_run(kfp, experiment, pipeline, version, inputs.run_params)
            else:
                print("Run not started: the version is unchanged (--run-first runs new versions).")
        if inputs.cron:
            ensure_recurring_run(kfp, experiment, version, schedule, inputs.cron, inputs.run_params)


def verify_only(inputs: Inputs, policy: RetryPolicy) -> None:
    """``--verify-only`` (helm test): checks that this package+config's version exists."""
    with _connected(inputs, policy) as (kfp, tag, scratch):
        version_name, _ = _package_for_server(inputs, tag, scratch)
        verify(kfp, inputs.pipeline_name, version_name, inputs.upload_job)


def disable_recurring_run(inputs: Inputs, policy: RetryPolicy) -> None:
    """``--disable-recurring-run`` (helm uninstall): disables the schedule, creates nothing."""
    with _connected(inputs, policy) as (kfp, _, _):
        disable_recurring_runs(kfp, inputs.experiment_name, inputs.pipeline_name)


@contextlib.contextmanager
def _connected(inputs: Inputs, policy: RetryPolicy) -> Iterator[Tuple[KfpApi, str, Path]]:
    """Yields (API, its version tag, scratch dir) once the API has answered, within the deadline."""
    with scratch_dir() as scratch, hard_deadline(inputs.deadline_seconds, inputs.host):
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
        print(
            f"KFP API at {inputs.host} answered (version: {tag}, multi-user: "
            f"{'yes' if multi_user else 'no'}, namespace: {inputs.namespace or '-'}, "
            f"token: {'yes' if inputs.token_path else 'no'})."
        )
        if multi_user:
            check_multi_user_settings(inputs.namespace, inputs.token_path)
        yield kfp, tag, scratch


def _package_for_server(inputs: Inputs, tag: str, scratch: Path) -> Tuple[str, str]:
    """Adapts the package to the server's backend; returns (version name, package file)."""
    from tao_kfp.package import adapt_for_backend, dump_package

    text = inputs.package_text
    backend = _choose_backend(tag, inputs.stated_backend)
    if backend is not None:
        try:
            docs, lost = adapt_for_backend(inputs.package_docs, backend)
        except ValueError as error:  # below the floor
            raise UploadError(str(error)) from error
        for line in lost:
            print(line)
        if lost:
            text = dump_package(docs)
    package_file = scratch / "pipeline.yaml"  # kfp and the API tell YAML by the extension
    package_file.write_text(text, encoding="utf-8")
    return version_name_for(inputs.version_prefix, text), str(package_file)


def _choose_backend(tag: str, stated: Any) -> Any:
    """The backend to adapt for: the server's report, else the stated one, else None (newest)."""
    from tao_kfp.package import KfpBackend

    reported = None
    if tag != "unknown":
        try:
            reported = KfpBackend.parse(tag)
        except ValueError:
            print(f"KFP API reports version {tag!r}, which is not a version number.")
    if reported is not None:
        if stated is not None and stated != reported:
            print(f"KFP API reports version {reported}; --kfp-version {stated} is not used.")
        return reported
    if stated is not None:
        print(f"Using KFP backend version {stated} from --kfp-version (kfp.backendVersion).")
        return stated
    print(
        "KFP backend version unknown (a custom build) and no --kfp-version (kfp.backendVersion) "
        "given: uploading for KFP 2.16.0 or newer. On an older backend, set kfp.backendVersion."
    )
    return None
