"""``tao-kfp upload``: put the pipeline into a Kubeflow Pipelines API as a named version.

The chart's post-install/post-upgrade hook Job runs it, and ``helm test`` runs it with
``--verify-only``. The package is adapted to the environment config and uploaded as the version
``<version-prefix>-<first 10 hex digits of sha256(adapted YAML)>``, so an install or upgrade that
changes nothing creates nothing. Connection errors, timeouts and HTTP 5xx answers are retried with
exponential backoff until ``--deadline-seconds``. A 4xx answer fails at once with the server's
message.

Usage (one command):
    tao-kfp upload --package files/pipelines/tao_classification.yaml --config env.yaml
        --host http://ml-pipeline.kubeflow:8888 --pipeline-name tao-classification
        --version-prefix 0.1.0
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

# Where the kubelet projects the ServiceAccount token for KFP (same env var and default as kfp).
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
TOKEN_AUDIENCE = "pipelines.kubeflow.org"

REACHABILITY_CHECKS = (
    "Check that Kubeflow Pipelines is installed and its API pod is running "
    "(kubectl get pods -A -l app=ml-pipeline), that --host is the API service "
    "(for example http://ml-pipeline.kubeflow:8888), and that no NetworkPolicy or Istio "
    "AuthorizationPolicy/PeerAuthentication blocks this pod from reaching it."
)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried. Tests shrink these values to milliseconds."""

    first_wait_seconds: float = 1.0
    max_wait_seconds: float = 30.0
    # kfp sends requests without a timeout. Without these, a NetworkPolicy that drops packets
    # would block one call for minutes, past the deadline.
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0


class UploadError(Exception):
    """A failure whose message says what went wrong and what to check."""


class ApiRejected(UploadError):
    """The KFP API answered with a 4xx status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


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
        "--deadline-seconds",
        type=float,
        default=600.0,
        help="retry while the API is unreachable or answers 5xx for this long (default 600)",
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
        help='create one recurring run per version on this cron schedule, e.g. "0 0 * * *"',
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
    """Uploads (or verifies) and turns an ``UploadError`` into a message and exit status 1."""
    try:
        upload(args, policy)
    except UploadError as error:
        print(f"tao-kfp upload: error: {error}", file=sys.stderr)
        return 1
    return 0


def version_name_for(prefix: str, package_text: str) -> str:
    """Returns the version name: KFP wants it unique per pipeline, the hash makes it so."""
    digest = hashlib.sha256(package_text.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:10]}"


def upload(args: argparse.Namespace, policy: RetryPolicy) -> None:
    """Does the whole job. Every expected failure raises ``UploadError``."""
    # Check everything local before touching the network.
    _check_host(args.host)
    if args.deadline_seconds <= 0:
        raise UploadError(f"--deadline-seconds must be > 0, got {args.deadline_seconds:g}")
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise UploadError(f"--ca-bundle {args.ca_bundle}: no such file")
    prefix = (args.version_prefix or "").strip()
    if not prefix:
        raise UploadError("--version-prefix is empty; pass the chart's appVersion, e.g. 0.1.0")
    text = adapted_package_text(Path(args.package), Path(args.config) if args.config else None)
    version_name = version_name_for(prefix, text)
    token_path = resolve_token_path(args.token_path)
    run_params = _parse_run_params(args.run_params)
    cron = _normalise_cron(args.recurring_cron) if args.recurring_cron else None

    with _scratch_dir() as scratch:
        package_file = scratch / "pipeline.yaml"  # kfp and the API tell YAML by the extension
        package_file.write_text(text, encoding="utf-8")
        kfp = KfpApi(args, token_path, policy, scratch)

        healthz = kfp.call("reach the API", kfp.client.healthzs.healthz_service_get_healthz)
        multi_user = bool(healthz.multi_user)
        print(
            f"KFP API at {args.host} answered (multi-user: {'yes' if multi_user else 'no'}, "
            f"namespace: {args.namespace or '-'}, token: {'yes' if token_path else 'no'})."
        )
        if multi_user:
            _check_multi_user_settings(args.namespace, token_path)

        if args.verify_only:
            verify(kfp, args, version_name)
            return

        pipeline = ensure_pipeline(kfp, args.pipeline_name, str(package_file), args.description)
        version, created = ensure_version(
            kfp, pipeline, version_name, str(package_file), args.description
        )
        if not (args.experiment or args.run_first or cron):
            return
        experiment = ensure_experiment(kfp, args.experiment or args.pipeline_name)
        if args.run_first:
            if created:
                start_run(kfp, experiment, pipeline, version, run_params)
            else:
                print("Run not started: the version is unchanged (--run-first runs new versions).")
        if cron:
            ensure_recurring_run(kfp, experiment, pipeline, version, cron, run_params)


def adapted_package_text(package: Path, config: Optional[Path]) -> str:
    """Returns the YAML to upload: the package adapted to ``config``, or as it is without one."""
    if not package.is_file():
        raise UploadError(f"--package {package}: no such file (compile it with `tao-kfp compile`)")
    if config is None:
        text = package.read_text(encoding="utf-8")
        _check_is_pipeline(text, package)
        return text
    if not config.is_file():
        raise UploadError(f"--config {config}: no such file")
    import yaml

    from tao_kfp.environment import EnvironmentConfig, adapt_package, dump_package, load_package

    try:
        env = EnvironmentConfig.from_yaml(config)
    except (ValueError, yaml.YAMLError) as error:  # pydantic's ValidationError is a ValueError
        raise UploadError(
            f"--config {config} is not a valid environment config: {error}"
        ) from error
    try:
        return dump_package(adapt_package(load_package(package), env))
    except (ValueError, KeyError, yaml.YAMLError) as error:  # KeyError: not our pipeline's shape
        raise UploadError(
            f"Could not adapt --package {package} to --config {config}: {error}"
        ) from error


def resolve_token_path(explicit: Optional[str]) -> Optional[str]:
    """Returns the token file to use, or None for no auth (standalone KFP)."""
    if explicit:
        path, source = explicit, "--token-path"
    elif os.environ.get(TOKEN_PATH_ENV):
        path, source = os.environ[TOKEN_PATH_ENV], f"${TOKEN_PATH_ENV}"
    elif Path(DEFAULT_TOKEN_PATH).is_file():
        path, source = DEFAULT_TOKEN_PATH, "the default token path"
    else:
        return None
    try:
        has_token = bool(Path(path).read_text(encoding="utf-8").strip())
    except OSError as error:
        raise UploadError(
            f"{source} names {path}, which cannot be read ({error.strerror}). Mount a projected "
            f"ServiceAccount token with audience {TOKEN_AUDIENCE} there (multi-user Kubeflow), "
            "or unset it for a standalone KFP without auth."
        ) from error
    if not has_token:
        raise UploadError(f"{source} names {path}, which is empty")
    return path


class KfpApi:
    """A kfp ``Client`` plus retries bounded by one deadline for the whole run."""

    def __init__(
        self,
        args: argparse.Namespace,
        token_path: Optional[str],
        policy: RetryPolicy,
        scratch: Path,
    ):
        self.host = args.host
        self.namespace: Optional[str] = args.namespace or None
        self.policy = policy
        self.deadline_seconds = args.deadline_seconds
        self.deadline = time.monotonic() + args.deadline_seconds
        self.client = _make_client(args, token_path, policy, scratch)

    def call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn``, retrying transient failures until the deadline; ``action`` names it."""
        import tenacity

        backoff = tenacity.wait_exponential(
            multiplier=self.policy.first_wait_seconds, max=self.policy.max_wait_seconds
        )

        def wait(state: tenacity.RetryCallState) -> float:
            return max(0.0, min(backoff(state), self.deadline - time.monotonic()))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            left = max(0.0, self.deadline - time.monotonic())
            failure = _describe(state.outcome.exception())
            print(
                f"KFP API at {self.host}: could not {action} ({failure}); "
                f"retrying in {state.next_action.sleep:.2f} s ({left:.0f} s left)",
                file=sys.stderr,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_transient),
            stop=lambda state: time.monotonic() >= self.deadline,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        started = time.monotonic()
        try:
            # kfp prints UI links built from the API host (wrong for the UI); we print our own.
            with contextlib.redirect_stdout(io.StringIO()), _quiet_urllib3_retries():
                return retrying(fn, *args, **kwargs)
        except Exception as error:
            explained = self._explain(action, error, time.monotonic() - started)
            if explained is None:
                raise
            raise explained from error

    def _explain(self, action: str, error: Exception, elapsed: float) -> Optional[UploadError]:
        """Turns a failure into a message that says what to check, or None if it is unexpected."""
        from kfp_server_api import ApiException

        if _is_transient(error):
            return UploadError(
                f"The KFP API at {self.host} was unreachable for {elapsed:.0f} s while trying to "
                f"{action} (--deadline-seconds {self.deadline_seconds:g}; last error: "
                f"{_describe(error)}). {REACHABILITY_CHECKS}"
            )
        if _is_tls_error(error):
            return UploadError(
                f"TLS verification of {self.host} failed while trying to {action} "
                f"({_describe(error)}). Pass --ca-bundle with the CA that signed the API's "
                "certificate, or use the in-cluster http:// service address."
            )
        if isinstance(error, ApiException) and 400 <= (error.status or 0) < 500:
            return ApiRejected(
                f"The KFP API at {self.host} rejected the request to {action}: HTTP {error.status} "
                f"{error.reason or ''}: {server_message(error)}{_hint_for_status(error.status)}",
                error.status,
            )
        if isinstance(error, ApiException):  # e.g. a redirect: not the API we expected
            return UploadError(
                f"The KFP API at {self.host} answered the request to {action} with HTTP "
                f"{error.status} {error.reason or ''}: {server_message(error)}"
            )
        return None

    def find_pipeline(self, name: str) -> Any:
        """Returns the pipeline called ``name`` in our namespace, or None."""
        response = self.call(
            f"look up pipeline '{name}'",
            self.client.list_pipelines,
            filter=_display_name_filter(name),
            namespace=self.namespace,
            page_size=100,
        )
        return _named(response.pipelines, name)

    def find_version(self, pipeline_id: str, name: str) -> Any:
        """Returns the version called ``name`` of the pipeline, or None."""
        response = self.call(
            f"look up pipeline version '{name}'",
            self.client.list_pipeline_versions,
            pipeline_id=pipeline_id,
            filter=_display_name_filter(name),
            page_size=100,
        )
        return _named(response.pipeline_versions, name)

    def find_experiment(self, name: str) -> Any:
        """Returns the experiment called ``name`` in our namespace, or None."""
        try:
            return self.call(
                f"look up experiment '{name}'",
                self.client.get_experiment,
                experiment_name=name,
                namespace=self.namespace,
            )
        except ValueError as error:  # kfp's way of saying "not found" (or "several found")
            if str(error).startswith("No experiment is found"):
                return None
            raise UploadError(f"Experiment '{name}': {error}") from error

    def find_recurring_run(self, experiment_id: str, name: str) -> Any:
        """Returns the recurring run called ``name`` in the experiment, or None."""
        response = self.call(
            f"look up recurring run '{name}'",
            self.client.list_recurring_runs,
            experiment_id=experiment_id,
            filter=_display_name_filter(name),
            page_size=100,
        )
        return _named(response.recurring_runs, name)


def ensure_pipeline(kfp: KfpApi, name: str, package_file: str, description: Optional[str]) -> Any:
    """Returns the pipeline called ``name``, creating it from the package if absent."""
    pipeline = kfp.find_pipeline(name)
    if pipeline is not None:
        print(f"Pipeline '{name}' exists (id {pipeline.pipeline_id}).")
        return pipeline
    try:
        pipeline = kfp.call(
            f"create pipeline '{name}'",
            kfp.client.upload_pipeline,
            package_file,
            pipeline_name=name,
            description=description,
            namespace=kfp.namespace,
        )
    except ApiRejected as error:
        if error.status != 409:
            raise
        # Someone (a concurrent install?) created the same name between our look-up and upload.
        pipeline = kfp.find_pipeline(name)
        if pipeline is None:
            raise
        print(f"Pipeline '{name}' exists (id {pipeline.pipeline_id}, created concurrently).")
        return pipeline
    _require_id(pipeline.pipeline_id, "pipeline", kfp.host)
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
    try:
        version = kfp.call(
            f"upload pipeline version '{name}'",
            kfp.client.upload_pipeline_version,
            package_file,
            pipeline_version_name=name,
            pipeline_id=pipeline.pipeline_id,
            description=description,
        )
    except ApiRejected as error:
        if error.status != 409:
            raise
        # The name carries the content hash, so an existing version of that name has our content.
        version = kfp.find_version(pipeline.pipeline_id, name)
        if version is None:
            raise
        print(
            f"Pipeline version '{name}' unchanged (id {version.pipeline_version_id}, "
            "uploaded concurrently)."
        )
        return version, False
    _require_id(version.pipeline_version_id, "pipeline version", kfp.host)
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
    try:
        experiment = kfp.call(
            f"create experiment '{name}'",
            kfp.client.create_experiment,
            name,
            namespace=kfp.namespace,
        )
    except ApiRejected as error:
        experiment = kfp.find_experiment(name) if error.status == 409 else None
        if experiment is None:
            raise
        print(f"Experiment '{name}' exists (id {experiment.experiment_id}, created concurrently).")
        return experiment
    _require_id(experiment.experiment_id, "experiment", kfp.host)
    print(f"Experiment '{name}' created (id {experiment.experiment_id}).")
    return experiment


def start_run(
    kfp: KfpApi, experiment: Any, pipeline: Any, version: Any, params: Dict[str, Any]
) -> None:
    """Starts one run of the version."""
    name = f"{pipeline.name or pipeline.display_name} {version.name or version.display_name}"
    run = kfp.call(
        f"start run '{name}'",
        kfp.client.run_pipeline,
        experiment_id=experiment.experiment_id,
        job_name=name,
        params=params,
        pipeline_id=pipeline.pipeline_id,
        version_id=version.pipeline_version_id,
    )
    print(f"Run '{name}' started (id {run.run_id}) in experiment '{experiment.display_name}'.")


def ensure_recurring_run(
    kfp: KfpApi, experiment: Any, pipeline: Any, version: Any, cron: str, params: Dict[str, Any]
) -> None:
    """Creates the version's recurring run unless it exists (one per version)."""
    name = f"{pipeline.name or pipeline.display_name} {version.name or version.display_name}"
    name += " schedule"
    existing = kfp.find_recurring_run(experiment.experiment_id, name)
    if existing is not None:
        print(f"Recurring run '{name}' exists (id {existing.recurring_run_id}).")
        return
    recurring = kfp.call(
        f"create recurring run '{name}'",
        kfp.client.create_recurring_run,
        experiment_id=experiment.experiment_id,
        job_name=name,
        cron_expression=cron,
        params=params,
        pipeline_id=pipeline.pipeline_id,
        version_id=version.pipeline_version_id,
        max_concurrency=1,
        no_catchup=True,  # after downtime, run once rather than once per missed slot
    )
    print(f"Recurring run '{name}' created (id {recurring.recurring_run_id}, cron '{cron}').")


def verify(kfp: KfpApi, args: argparse.Namespace, version_name: str) -> None:
    """Checks that this package+config's pipeline version exists; creates nothing."""
    logs = f"kubectl logs job/{args.upload_job or '<upload Job>'}"
    where = f" in namespace '{kfp.namespace}'" if kfp.namespace else ""
    pipeline = kfp.find_pipeline(args.pipeline_name)
    if pipeline is None:
        raise UploadError(
            f"Pipeline '{args.pipeline_name}' is missing{where} at {kfp.host}. The chart's upload "
            f"Job creates it on install and upgrade: read its log ({logs}), fix the cause, then "
            "run `helm upgrade` again."
        )
    version = kfp.find_version(pipeline.pipeline_id, version_name)
    if version is None:
        raise UploadError(
            f"Pipeline '{args.pipeline_name}' (id {pipeline.pipeline_id}) has no version "
            f"'{version_name}' for this package and config at {kfp.host}. The upload Job did not "
            f"finish or has not run since the config changed: read its log ({logs}), fix the "
            "cause, then run `helm upgrade` again."
        )
    print(
        f"OK: pipeline '{args.pipeline_name}' (id {pipeline.pipeline_id}) has version "
        f"'{version_name}' (id {version.pipeline_version_id})."
    )


def server_message(error: Any) -> str:
    """Returns the message in an ``ApiException`` body (KFP JSON error, or plain text)."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = (body or "").strip()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        # grpc-gateway errors carry "message"; the upload endpoints "error_message".
        for key in ("message", "error_message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
    return body or "(empty body)"


def _make_client(
    args: argparse.Namespace, token_path: Optional[str], policy: RetryPolicy, scratch: Path
) -> Any:
    """Builds the kfp Client without network traffic and without touching $HOME."""
    import warnings

    from kfp.client import Client
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    # The kubelet rotates projected tokens; these credentials re-read the file for every request.
    credentials = ServiceAccountTokenVolumeCredentials(token_path) if token_path else None
    with _private_kfp_context(Client, scratch / "kfp-context.json"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2+"
        client = Client(host=args.host, credentials=credentials, ssl_ca_cert=args.ca_bundle)
        # An empty namespace means "none" (standalone KFP); calls then send no namespace.
        client.set_user_namespace(args.namespace or "")
    _bound_request_time(client, policy)
    return client


@contextlib.contextmanager
def _private_kfp_context(client_class: Any, path: Path) -> Iterator[None]:
    """Points kfp's context file (normally ~/.config/kfp/context.json) at ``path`` meanwhile.

    Why: the Job's HOME may be read-only; a user's context file could add a header such as
    kubeflow-userid, or cookies, to every request; and a context without a namespace makes
    ``Client.__init__`` probe /healthz with its own fixed 5 x 5 s retry loop, outside our deadline.
    So the context starts with a placeholder namespace and ``set_user_namespace`` sets the real one.
    """
    path.write_text(json.dumps({"namespace": "placeholder"}), encoding="utf-8")
    previous = client_class._LOCAL_KFP_CONTEXT
    client_class._LOCAL_KFP_CONTEXT = str(path)
    try:
        yield
    finally:
        client_class._LOCAL_KFP_CONTEXT = previous


def _bound_request_time(client: Any, policy: RetryPolicy) -> None:
    """Gives every HTTP request of ``client`` a connect and read timeout (see RetryPolicy)."""
    rest_client = client._pipelines_api.api_client.rest_client  # shared by every service API
    send = rest_client.request
    timeout = (policy.connect_timeout_seconds, policy.read_timeout_seconds)

    def request_with_timeout(*args: Any, **kwargs: Any) -> Any:
        kwargs["_request_timeout"] = kwargs.get("_request_timeout") or timeout
        return send(*args, **kwargs)

    rest_client.request = request_with_timeout


@contextlib.contextmanager
def _quiet_urllib3_retries() -> Iterator[None]:
    """Mutes urllib3's WARNING per immediate reconnect; our one line per attempt says it."""
    logger = logging.getLogger("urllib3.connectionpool")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    """A private temporary directory for the kfp context file and the adapted package."""
    candidates = [None, os.path.expanduser("~")]  # TMPDIR, /tmp, /var/tmp, cwd; then HOME
    for parent in candidates:
        try:
            scratch = tempfile.TemporaryDirectory(prefix="tao-kfp-upload-", dir=parent)
        except OSError:
            continue
        with scratch as path:
            yield Path(path)
        return
    raise UploadError(
        "No writable directory for scratch files: TMPDIR, /tmp, /var/tmp, the working directory "
        f"and HOME ({os.path.expanduser('~')}) all failed. Mount an emptyDir and point TMPDIR or "
        "HOME at it."
    )


def _is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: unreachable, timed out, HTTP 5xx or 429."""
    import socket

    import urllib3
    from kfp_server_api import ApiException

    if isinstance(error, ApiException):
        return error.status == 429 or (error.status or 0) >= 500  # status 0: TLS, not transient
    if _is_tls_error(error):
        return False
    if isinstance(error, urllib3.exceptions.LocationValueError):  # a malformed host never heals
        return False
    # Not OSError in general: an unreadable token file is an OSError too, and never heals.
    network_errors = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, socket.timeout)
    return isinstance(error, network_errors)


def _is_tls_error(error: BaseException) -> bool:
    import urllib3
    from kfp_server_api import ApiException

    if isinstance(error, ApiException):
        return error.status == 0
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        error = error.reason
    return isinstance(error, urllib3.exceptions.SSLError)


def _describe(error: Optional[BaseException]) -> str:
    """One short line about a failure, for logs and messages."""
    import urllib3
    from kfp_server_api import ApiException

    if isinstance(error, ApiException) and error.status:
        text = f"HTTP {error.status} {error.reason or ''}: {server_message(error)}"
    elif isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        text = f"{type(error.reason).__name__}: {error.reason}"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _hint_for_status(status: int) -> str:
    if status in (401, 403):
        return (
            ". Check the token (--token-path: a projected ServiceAccount token with audience "
            f"{TOKEN_AUDIENCE}) and that its ServiceAccount may use the namespace (--namespace; "
            "multi-user Kubeflow: a RoleBinding or profile contributor entry)."
        )
    if status == 404:
        return ". Is --host the KFP API service (for example http://ml-pipeline.kubeflow:8888)?"
    return ""


def _check_host(host: str) -> None:
    if not host.startswith(("http://", "https://")):
        raise UploadError(
            f"--host {host!r} needs a scheme, for example http://ml-pipeline.kubeflow:8888"
        )


def _check_is_pipeline(text: str, package: Path) -> None:
    """Fails early, naming the file, if it is not a compiled KFP v2 pipeline."""
    import yaml

    try:
        first = next(iter(yaml.safe_load_all(text)), None)
    except yaml.YAMLError as error:
        raise UploadError(f"--package {package} is not valid YAML: {error}") from error
    if not isinstance(first, dict) or "pipelineInfo" not in first or "root" not in first:
        raise UploadError(
            f"--package {package} is not a compiled KFP pipeline (its first YAML document has no "
            "pipelineInfo and root); pass the YAML that `tao-kfp compile` writes."
        )


def _check_multi_user_settings(namespace: Optional[str], token_path: Optional[str]) -> None:
    if not namespace:
        raise UploadError(
            "The KFP API runs in multi-user mode: pass --namespace with the profile namespace "
            "the pipeline belongs to."
        )
    if not token_path:
        raise UploadError(
            "The KFP API runs in multi-user mode and needs a ServiceAccount token: mount a "
            f"projected token with audience {TOKEN_AUDIENCE} and pass --token-path (default "
            f"${TOKEN_PATH_ENV}, else {DEFAULT_TOKEN_PATH})."
        )


def _parse_run_params(text: Optional[str]) -> Dict[str, Any]:
    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError as error:
        raise UploadError(f"--run-params is not valid JSON ({error}): {text}") from error
    if not isinstance(params, dict):
        raise UploadError(f"--run-params must be a JSON object such as '{{\"a\": 1}}', got {text}")
    return params


def _normalise_cron(cron: str) -> str:
    """Returns a 6-field cron expression (KFP's schedules have a leading seconds field)."""
    fields = cron.split()
    if len(fields) == 5:
        fields.insert(0, "0")
    if len(fields) != 6:
        raise UploadError(
            f"--recurring-cron {cron!r} has {len(fields)} fields; give 5 (minute hour day month "
            "weekday, e.g. '0 0 * * *') or KFP's 6 (seconds first, e.g. '0 0 0 * * *')."
        )
    return " ".join(fields)


def _display_name_filter(name: str) -> str:
    """A list filter, in the JSON form kfp's own Client sends."""
    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": name}
    return json.dumps({"predicates": [predicate]})


def _named(items: Optional[list], name: str) -> Any:
    """The item whose name is ``name`` (display names need not be unique; names are)."""
    for item in items or []:
        if (item.name if getattr(item, "name", None) else item.display_name) == name:
            return item
    return None


def _require_id(value: Optional[str], what: str, host: str) -> None:
    # A login page or dashboard answers 200 with HTML, which kfp turns into an empty object.
    if not value:
        raise UploadError(
            f"{host} answered the {what} request without an id: is --host the KFP API service "
            "rather than the Kubeflow dashboard or a login page?"
        )
