"""``KfpApi``: a kfp Client plus retries, messages and lookups by name, within one deadline."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from tao_kfp.upload.errors import REACHABILITY_CHECKS, ApiRejected, UploadError
from tao_kfp.upload.inputs import TOKEN_AUDIENCE
from tao_kfp.upload.transport import (
    bound_requests,
    describe,
    is_tls_error,
    is_transient,
    make_client,
    server_message,
)

# The release's one recurring run is "<pipeline name> schedule" (tao_kfp.upload.reconcile).
SCHEDULE_SUFFIX = " schedule"


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


class KfpApi:
    """A kfp ``Client`` plus retries, all bounded by one deadline for the whole command."""

    def __init__(
        self,
        *,
        host: str,
        namespace: Optional[str],
        token_path: Optional[str],
        ca_bundle: Optional[str],
        deadline_seconds: float,
        policy: RetryPolicy,
        scratch: Path,
    ):
        self.host = host
        self.namespace: Optional[str] = namespace or None
        self.policy = policy
        self.deadline_seconds = deadline_seconds
        self.deadline = time.monotonic() + deadline_seconds
        self.client = make_client(host, namespace, token_path, ca_bundle, scratch)
        hostname = urlsplit(host).hostname or ""  # checked by inputs.check_host
        bound_requests(
            self.client,
            policy.connect_timeout_seconds,
            policy.read_timeout_seconds,
            self.time_left,
            hostname,
        )

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
            failure = describe(state.outcome.exception())
            print(
                f"KFP API at {self.host}: could not {action} ({failure}); "
                f"retrying in {state.next_action.sleep:.2f} s ({left:.0f} s left)",
                file=sys.stderr,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
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

        if is_transient(error):
            return UploadError(
                f"The KFP API at {self.host} was unreachable for {elapsed:.0f} s while trying to "
                f"{action} (--deadline-seconds {self.deadline_seconds:g}; last error: "
                f"{describe(error)}). {REACHABILITY_CHECKS}"
            )
        if is_tls_error(error):
            return UploadError(
                f"TLS verification of {self.host} failed while trying to {action} "
                f"({describe(error)}). Pass --ca-bundle with the CA that signed the API's "
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
        pipeline_name = name[: -len(SCHEDULE_SUFFIX)]
        response = self.call(
            f"look up recurring run '{name}'",
            self.client.list_recurring_runs,
            experiment_id=experiment_id,
            filter=_display_name_filter(pipeline_name + " ", "IS_SUBSTRING"),
            page_size=100,
        )
        release = re.compile(
            rf"^{re.escape(pipeline_name)}( \S+-[0-9a-f]{{10}})?{re.escape(SCHEDULE_SUFFIX)}$"
        )
        return [r for r in response.recurring_runs or [] if release.match(r.display_name or "")]


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
