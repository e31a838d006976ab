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
floor are refused (``tao_kfp.environment.adapt_for_backend``).

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
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

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
    # Upper bounds per request; each request gets at most the time left before the deadline.
    # kfp sends requests without a timeout: a NetworkPolicy that drops packets, or a server that
    # accepts and never answers, would otherwise hold one call for minutes.
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0


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
    """Uploads (or verifies) and turns an ``UploadError`` into one line and exit status 1."""
    try:
        upload(args, policy)
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


def version_name_for(prefix: str, package_text: str) -> str:
    """Returns the version name: KFP wants it unique per pipeline, the hash makes it so."""
    digest = hashlib.sha256(package_text.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:10]}"


def upload(args: argparse.Namespace, policy: RetryPolicy) -> None:
    """Does the whole job. Every expected failure raises ``UploadError``."""
    # Check everything local before touching the network.
    _check_host(args.host)
    if not args.deadline_seconds > 0:  # also refuses nan
        raise UploadError(f"--deadline-seconds must be > 0, got {args.deadline_seconds:g}")
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise UploadError(f"--ca-bundle {args.ca_bundle}: no such file")
    prefix = (args.version_prefix or "").strip()
    if not prefix:
        raise UploadError("--version-prefix is empty; pass the chart's appVersion, e.g. 0.1.0")
    # Column sizes of the real server (model/pipeline.go:44 varchar(128),
    # model/pipeline_version.go:37 varchar(127)); a longer name fails the insert with a 500.
    if len(version_name_for(prefix, "")) > 127:
        raise UploadError(f"--version-prefix is {len(prefix)} characters; KFP allows 116")
    if not args.pipeline_name.strip() or len(args.pipeline_name) > 128:
        raise UploadError(
            f"--pipeline-name must have 1 to 128 characters, got {len(args.pipeline_name)}"
        )
    package = Path(args.package)
    original_text, docs = read_package(package)
    env = _load_environment(Path(args.config)) if args.config else None
    if env is not None:
        docs = _adapt(docs, env, package, args.config)
    token_path = resolve_token_path(args.token_path)
    run_params = _parse_run_params(args.run_params)
    cron = _normalise_cron(args.recurring_cron) if args.recurring_cron else None
    uploads = not (args.verify_only or args.disable_recurring_run)
    if uploads and (run_params or args.run_first or cron):
        check_run_params(run_params, docs[0], runs_start=bool(args.run_first or cron))
    stated = _parse_backend(args.kfp_version, "--kfp-version") if args.kfp_version else None

    with _scratch_dir() as scratch, _hard_deadline(args.deadline_seconds, args.host):
        kfp = KfpApi(args, token_path, policy, scratch)

        health = kfp.healthz()
        multi_user = bool(health.get("multi_user"))
        tag = str(health.get("tag_name") or "unknown")
        print(
            f"KFP API at {args.host} answered (version: {tag}, multi-user: "
            f"{'yes' if multi_user else 'no'}, namespace: {args.namespace or '-'}, "
            f"token: {'yes' if token_path else 'no'})."
        )
        if multi_user:
            _check_multi_user_settings(args.namespace, token_path)

        if args.disable_recurring_run:
            disable_recurring_runs(kfp, args.experiment or args.pipeline_name, args.pipeline_name)
            return

        backend = _choose_backend(tag, stated)
        text = original_text if env is None else dump_package(docs)
        if backend is not None:
            docs, lost = adapt_for_backend(docs, backend)
            for line in lost:
                print(line)
            if lost:
                text = dump_package(docs)
        version_name = version_name_for(prefix, text)
        package_file = scratch / "pipeline.yaml"  # kfp and the API tell YAML by the extension
        package_file.write_text(text, encoding="utf-8")

        if args.verify_only:
            verify(kfp, args, version_name)
            return

        pipeline = ensure_pipeline(kfp, args.pipeline_name, str(package_file), args.description)
        version, created = ensure_version(
            kfp, pipeline, version_name, str(package_file), args.description
        )
        schedule = recurring_run_name(args.pipeline_name)
        experiment_name = args.experiment or args.pipeline_name
        if not cron:
            # No schedule wanted (any more): remove the one an earlier revision created.
            experiment = kfp.find_experiment(experiment_name)
            if experiment is not None:
                remove_recurring_runs(kfp, experiment, schedule, keep=None)
        if not (args.experiment or args.run_first or cron):
            return
        experiment = ensure_experiment(kfp, experiment_name)
        if args.run_first:
            if created:
                start_run(kfp, experiment, pipeline, version, run_params)
            else:
                print("Run not started: the version is unchanged (--run-first runs new versions).")
        if cron:
            ensure_recurring_run(kfp, experiment, version, schedule, cron, run_params)


def read_package(package: Path) -> Tuple[str, List[dict]]:
    """Returns (text, documents) of a compiled KFP v2 package; fails naming the file otherwise."""
    import yaml

    if not package.is_file():
        raise UploadError(f"--package {package}: no such file (compile it with `tao-kfp compile`)")
    try:
        text = package.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UploadError(
            f"--package {package} is not text (byte {error.start} is not UTF-8): pass the YAML "
            "that `tao-kfp compile` writes, not an archive or a binary file"
        ) from error
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise UploadError(f"--package {package} is not valid YAML: {reason}") from error
    first = docs[0] if docs else None
    if not isinstance(first, dict) or "pipelineInfo" not in first or "root" not in first:
        found = "is empty" if first is None else "has no pipelineInfo and root"
        raise UploadError(
            f"--package {package} is not a compiled KFP pipeline (its first YAML document "
            f"{found}); pass the YAML that `tao-kfp compile` writes."
        )
    return text, docs


def _load_environment(config: Path) -> Any:
    import yaml

    from tao_kfp.environment import EnvironmentConfig

    if not config.is_file():
        raise UploadError(f"--config {config}: no such file")
    try:
        return EnvironmentConfig.from_yaml(config)
    except UnicodeDecodeError as error:
        raise UploadError(f"--config {config} is not text (not UTF-8)") from error
    except (ValueError, yaml.YAMLError) as error:  # pydantic's ValidationError is a ValueError
        reason = " ".join(str(error).split())
        raise UploadError(
            f"--config {config} is not a valid environment config: {reason}"
        ) from error


def _adapt(docs: List[dict], env: Any, package: Path, config: str) -> List[dict]:
    from tao_kfp.environment import adapt_package

    try:
        return adapt_package(docs, env)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # not our pipeline's shape
        raise UploadError(
            f"Could not adapt --package {package} to --config {config} ({type(error).__name__}: "
            f"{error}): is it the package `tao-kfp compile` writes for this chart?"
        ) from error


def dump_package(docs: List[dict]) -> str:
    """The package text to upload (the one serialisation, tao_kfp.environment.dump_package)."""
    from tao_kfp.environment import dump_package as dump

    return dump(docs)


def adapt_for_backend(docs: List[dict], backend: Any) -> Tuple[List[dict], List[str]]:
    """Drops what ``backend`` cannot take (tao_kfp.environment.adapt_for_backend)."""
    from tao_kfp.environment import adapt_for_backend as adapt

    try:
        return adapt(docs, backend)
    except ValueError as error:  # below the floor
        raise UploadError(str(error)) from error


def _parse_backend(text: str, source: str) -> Any:
    from tao_kfp.environment import KfpBackend

    try:
        backend = KfpBackend.parse(text)
        backend.check_supported()
    except ValueError as error:
        raise UploadError(f"{source}: {error}") from error
    return backend


def _choose_backend(tag: str, stated: Any) -> Any:
    """The backend to adapt for: the server's report, else the stated one, else None (newest)."""
    from tao_kfp.environment import KfpBackend

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


# Python types a run parameter may have, per KFP parameterType (pipeline_spec.proto,
# ParameterType). bool is an int in Python, so it is ruled out for numbers explicitly.
_PARAMETER_TYPES = {
    "STRING": ((str,), "a string"),
    "NUMBER_INTEGER": ((int,), "an integer"),
    "NUMBER_DOUBLE": ((int, float), "a number"),
    "BOOLEAN": ((bool,), "true or false"),
    "LIST": ((list,), "a list"),
    "STRUCT": ((dict,), "a mapping"),
}


def check_run_params(params: Dict[str, Any], pipeline_spec: dict, *, runs_start: bool) -> None:
    """Checks run parameters against the pipeline's declared inputs: names, types, required.

    The chart checks the same at `helm install` (templates/validate-upload.yaml). Without it
    the API server takes the upload and then rejects the run, after the version exists.
    """
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    problems = []
    for name, value in params.items():
        spec = declared.get(name)
        if spec is None:
            problems.append(
                f"'{name}' is not a parameter of the pipeline (it has: "
                f"{', '.join(sorted(declared))})"
            )
            continue
        kind = spec.get("parameterType", "STRING")
        if kind not in _PARAMETER_TYPES:
            continue
        types, words = _PARAMETER_TYPES[kind]
        integral = isinstance(value, float) and value.is_integer()  # 5.0 from JSON/YAML
        fits = isinstance(value, types) or (kind == "NUMBER_INTEGER" and integral)
        if not fits or (isinstance(value, bool) and kind != "BOOLEAN"):
            problems.append(f"'{name}' must be {words}, got {json.dumps(value)}")
    if runs_start:
        problems += [
            f"'{name}' is required (the pipeline has no default for it)"
            for name, spec in sorted(declared.items())
            if not spec.get("isOptional") and "defaultValue" not in spec and name not in params
        ]
    if problems:
        raise UploadError(
            "--run-params (upload.runParams) does not fit the pipeline: " + "; ".join(problems)
        )


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
    """A kfp ``Client`` plus retries, all bounded by one deadline for the whole command."""

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
        self.client = _make_client(args, token_path, scratch)
        hostname = urlsplit(args.host).hostname or ""  # checked by _check_host
        _bound_requests(self.client, policy, self.time_left, hostname)

    def time_left(self) -> float:
        """Seconds until the deadline (negative once past)."""
        return self.deadline - time.monotonic()

    def call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn``, retrying transient failures until the deadline; ``action`` names it."""
        import tenacity

        backoff = tenacity.wait_exponential(
            multiplier=self.policy.first_wait_seconds, max=self.policy.max_wait_seconds
        )

        def wait(state: tenacity.RetryCallState) -> float:
            return max(0.0, min(backoff(state), self.time_left()))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            left = max(0.0, self.time_left())
            failure = _describe(state.outcome.exception())
            print(
                f"KFP API at {self.host}: could not {action} ({failure}); "
                f"retrying in {state.next_action.sleep:.2f} s ({left:.0f} s left)",
                file=sys.stderr,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_transient),
            stop=lambda state: self.time_left() <= 0,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        if self.time_left() <= 0:
            raise UploadError(
                f"--deadline-seconds {self.deadline_seconds:g} reached before trying to "
                f"{action} at {self.host}: the KFP API answered too slowly. {REACHABILITY_CHECKS}"
            )
        started = time.monotonic()
        try:
            # kfp prints UI links built from the API host (wrong for the UI); we print our own.
            with contextlib.redirect_stdout(io.StringIO()):
                return retrying(fn, *args, **kwargs)
        except UploadError:
            raise
        except Exception as error:
            explained = self._explain(action, error, time.monotonic() - started)
            if explained is None:
                raise
            raise explained from error

    def create(self, action: str, create: Callable[[], Any], find: Callable[[], Any]) -> Any:
        """Returns (object, created now?): ``create()``, or what ``find()`` sees after a conflict.

        A create whose answer was lost (a 5xx from a proxy, a timeout) may have landed, and a
        racing installer may have created the same object. Current servers answer a duplicate
        with 409 (backend/src/apiserver/server/pipeline_upload_server.go:187,343 on master),
        older ones with 500 (same file at 2.0.5, lines 135 and 226). So after a 409 or 5xx,
        look again before retrying: retried and racing creates end with one object.
        """
        from kfp_server_api import ApiException

        def attempt() -> Tuple[Any, bool]:
            try:
                return create(), True
            except ApiException as error:
                if error.status != 409 and not (error.status or 0) >= 500:
                    raise
                found = find()
                if found is None:
                    raise
                return found, False

        return self.call(action, attempt)

    def healthz(self) -> Dict[str, Any]:
        """The server's healthz answer as JSON: kfp's model drops ``tag_name``, so read it raw.

        ``{"commit_sha", "tag_name", "multi_user"}`` (backend/src/apiserver/main.go:556-581 on
        master; 2.5.0: main.go:271-281); ``tag_name`` is "unknown" on a custom build.
        """
        response = self.call(
            "reach the API",
            self.client.healthzs.healthz_service_get_healthz,
            _preload_content=False,
        )
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UploadError(
                f"{self.host}/apis/v2beta1/healthz did not answer with JSON: is --host the KFP "
                "API service rather than the Kubeflow dashboard or a login page?"
            )
        return data

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

    def _find_named(
        self, what: str, name: str, setting: str, list_fn: Callable[..., Any], field: str, **scope
    ) -> Any:
        """The ``what`` called ``name`` in a list call's ``field``, filtered by display name."""
        response = self.call(
            f"look up {what} '{name}'",
            list_fn,
            filter=_display_name_filter(name),
            page_size=100,
            **scope,
        )
        return _named(getattr(response, field), name, what, setting)

    def find_pipeline(self, name: str) -> Any:
        """Returns the pipeline called ``name`` in our namespace, or None."""
        return self._find_named(
            "pipeline",
            name,
            "--pipeline-name (upload.pipelineName)",
            self.client.list_pipelines,
            "pipelines",
            namespace=self.namespace,
        )

    def find_version(self, pipeline_id: str, name: str) -> Any:
        """Returns the version called ``name`` of the pipeline, or None."""
        return self._find_named(
            "pipeline version",
            name,
            "--version-prefix",
            self.client.list_pipeline_versions,
            "pipeline_versions",
            pipeline_id=pipeline_id,
        )

    def find_experiment(self, name: str) -> Any:
        """Returns the experiment called ``name`` in our namespace, or None."""
        return self._find_named(
            "experiment",
            name,
            "--experiment (upload.experiment)",
            self.client.list_experiments,
            "experiments",
            namespace=self.namespace,
        )

    def find_run(self, experiment_id: str, name: str) -> Any:
        """Returns a run called ``name`` in the experiment, or None."""
        response = self.call(
            f"look up run '{name}'",
            self.client.list_runs,
            experiment_id=experiment_id,
            filter=_display_name_filter(name),
            page_size=100,
        )
        return next((r for r in response.runs or [] if r.display_name == name), None)

    def find_recurring_runs(self, experiment_id: str, name: str) -> List[Any]:
        """Returns the release's recurring runs in the experiment (there may be several).

        Those called ``name``, and those 0.1.0 created per version ("<pipeline>
        <prefix>-<10 hex> schedule"), so an upgrade from it replaces them too.
        """
        pipeline_name = name[: -len(_SCHEDULE_SUFFIX)]
        response = self.call(
            f"look up recurring run '{name}'",
            self.client.list_recurring_runs,
            experiment_id=experiment_id,
            filter=_display_name_filter(pipeline_name + " ", "IS_SUBSTRING"),
            page_size=100,
        )
        release = re.compile(
            rf"^{re.escape(pipeline_name)}( \S+-[0-9a-f]{{10}})?{re.escape(_SCHEDULE_SUFFIX)}$"
        )
        return [r for r in response.recurring_runs or [] if release.match(r.display_name or "")]


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


_SCHEDULE_SUFFIX = " schedule"


def recurring_run_name(pipeline_name: str) -> str:
    """The one recurring run of a release is named after its pipeline, not a version."""
    return pipeline_name + _SCHEDULE_SUFFIX


def ensure_recurring_run(
    kfp: KfpApi, experiment: Any, version: Any, name: str, cron: str, params: Dict[str, Any]
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
    remove_recurring_runs(kfp, experiment, name, keep=keep)


def remove_recurring_runs(kfp: KfpApi, experiment: Any, name: str, keep: Any) -> None:
    """Deletes the recurring runs called ``name`` except ``keep`` (their past runs stay)."""
    for recurring in kfp.find_recurring_runs(experiment.experiment_id, name):
        if keep is not None and recurring.recurring_run_id == keep.recurring_run_id:
            continue
        kfp.call(
            f"delete recurring run '{name}' (id {recurring.recurring_run_id})",
            kfp.client.delete_recurring_run,
            recurring.recurring_run_id,
        )
        print(f"Recurring run '{name}' (id {recurring.recurring_run_id}) deleted.")


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


def _make_client(args: argparse.Namespace, token_path: Optional[str], scratch: Path) -> Any:
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


# The shortest timeout a request gets when the deadline is (nearly) reached: enough to fail
# cleanly, small enough that the command ends within a moment of its deadline.
_LAST_REQUEST_SECONDS = 0.5


def _bound_requests(
    client: Any, policy: RetryPolicy, time_left: Callable[[], float], hostname: str
) -> None:
    """Bounds every HTTP request of ``client`` by the time left, with no retries below ours.

    kfp_server_api's REST client passes ``Configuration.retries`` (None) to urllib3's
    PoolManager (kfp_server_api/rest.py:76-77), so urllib3 would retry each failed request 3
    times on its own (urllib3 Retry.DEFAULT), each with a full timeout: a server that accepts
    and never answers held a 10 s deadline for 481 s that way. Our retries are the only ones.
    """
    import urllib3

    rest_client = client._pipelines_api.api_client.rest_client  # shared by every service API
    # Pools are created lazily from these keyword arguments (urllib3 PoolManager._new_pool).
    # Retry(0), not False: failures then arrive as MaxRetryError, as kfp_server_api expects
    # (with False it turns an SSLError into an ApiException without a body and fails on it).
    rest_client.pool_manager.connection_pool_kw["retries"] = urllib3.util.Retry(total=0)
    send = rest_client.request

    def request_within_deadline(*args: Any, **kwargs: Any) -> Any:
        left = max(time_left(), _LAST_REQUEST_SECONDS)
        connect = min(policy.connect_timeout_seconds, left)
        _resolve_within(hostname, connect)
        kwargs["_request_timeout"] = (connect, min(policy.read_timeout_seconds, left))
        return send(*args, **kwargs)

    rest_client.request = request_within_deadline


def _resolve_within(hostname: str, seconds: float) -> None:
    """Looks ``hostname`` up in a helper thread; raises TimeoutError after ``seconds``.

    Name resolution (getaddrinfo) is outside urllib3's connect timeout, and a signal cannot
    interrupt it, so a resolver that does not answer (CoreDNS down, dropped UDP) would hold the
    command past its deadline. A lookup that fails is left to urllib3 to report.
    """
    import ipaddress
    import socket
    import threading

    try:
        ipaddress.ip_address(hostname)
        return  # nothing to resolve
    except ValueError:
        pass

    def look_up() -> None:
        with contextlib.suppress(OSError):
            socket.getaddrinfo(hostname, None)

    lookup = threading.Thread(target=look_up, daemon=True)
    lookup.start()
    lookup.join(seconds)
    if lookup.is_alive():
        raise TimeoutError(f"the name {hostname} did not resolve within {seconds:.1f} s (DNS)")


# How long after --deadline-seconds the hard stop fires. The per-request timeouts normally end
# the command first, with a better message; this catches what they cannot: a server that
# trickles its answer one byte at a time (each read is within the read timeout).
_HARD_STOP_GRACE_SECONDS = 1.0


@contextlib.contextmanager
def _hard_deadline(seconds: float, host: str) -> Iterator[None]:
    """Raises ``UploadError`` in the main thread once ``seconds`` (+ grace) have passed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; the per-request timeouts still apply
        return

    def expire(signum: int, frame: Any) -> None:
        raise UploadError(
            f"--deadline-seconds {seconds:g} reached: the KFP API at {host} accepted the "
            f"connection but did not finish answering in time. {REACHABILITY_CHECKS}"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds + _HARD_STOP_GRACE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


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
    """Refuses a --host that urllib3 could not connect to, with one line saying why."""
    example = "for example http://ml-pipeline.kubeflow:8888"
    if "://" not in host:
        raise UploadError(f"--host {host!r} needs a scheme, {example}")
    try:
        parts = urlsplit(host)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as error:  # also an unclosed IPv6 bracket
        raise UploadError(f"--host {host!r} is not a valid URL ({error}), {example}") from error
    if parts.scheme not in ("http", "https"):
        raise UploadError(f"--host {host!r}: the scheme must be http or https, {example}")
    if not parts.hostname:
        raise UploadError(f"--host {host!r} has no host name, {example}")
    if port == 0:
        raise UploadError(f"--host {host!r}: port 0 is not a port, {example}")
    if any(char.isspace() for char in host):
        raise UploadError(f"--host {host!r} contains white space, {example}")


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


def _display_name_filter(name: str, operation: str = "EQUALS") -> str:
    """A list filter, in the JSON form kfp's own Client sends."""
    predicate = {"operation": operation, "key": "display_name", "stringValue": name}
    return json.dumps({"predicates": [predicate]})


def _named(items: Optional[list], name: str, what: str, setting: str) -> Any:
    """The item called ``name``; fails if only a name differing in case exists.

    Real servers compare names case-insensitively (MySQL's default collation on the unique
    (Namespace, Name) index, backend/src/apiserver/model/pipeline.go:44), so such a name would
    be refused as a duplicate of an object we would never find by our exact name.
    """
    for item in items or []:
        if _name_of(item) == name:
            return item
    for item in items or []:
        if _name_of(item).casefold() == name.casefold():
            raise UploadError(
                f"The {what} name '{name}' clashes with the existing {what} '{_name_of(item)}': "
                f"KFP compares names case-insensitively. Use '{_name_of(item)}' or a name that "
                f"differs in more than case ({setting})."
            )
    return None


def _name_of(item: Any) -> str:
    # Display names need not be unique; pipeline and version names are.
    return (getattr(item, "name", None) or getattr(item, "display_name", None)) or ""


def _require_id(value: Optional[str], what: str, host: str) -> None:
    # A login page or dashboard answers 200 with HTML, which kfp turns into an empty object.
    if not value:
        raise UploadError(
            f"{host} answered the {what} request without an id: is --host the KFP API service "
            "rather than the Kubeflow dashboard or a login page?"
        )
