"""TEST DOUBLE of the Kubeflow Pipelines v2beta1 REST API. It is not a KFP server.

``FakeKfpApi`` is a small threaded HTTP server on 127.0.0.1 (random port). It implements only
the endpoints that kfp's ``Client`` calls for ``tao-kfp upload``: healthz, pipeline upload and
upload_version (multipart), pipeline and version lists with filters, experiments, runs and
recurring runs. Field names follow the ``kfp_server_api`` models (snake_case, plus
``recurringRuns`` in that list response). Errors use the grpc-gateway body
``{"error", "code", "message", "details"}``.

Tests use it to:
- record every request (method, path, query, headers, body) and assert on them;
- script failures: N answers with a status (5xx, 409, 400, or a non-JSON body the way Istio
  answers), a request that hangs, or a side effect that runs first (a concurrent installer);
- refuse connections until ``listen()`` is called: the socket is bound but not listening, so
  connects get ECONNREFUSED on a port that no one else can take meanwhile;
- act as a multi-user deployment: Bearer token required, and a ``kubeflow-userid`` header
  answered with 403 "RBAC: access denied" as Istio does.

Where it follows the real server (kubeflow/pipelines, backend/src/apiserver, master unless a tag
is named):
- names are unique case-insensitively, and the EQUALS filter ignores case, as MySQL's default
  collation does for the unique (Namespace, Name) and (PipelineId, Name) indexes
  (model/pipeline.go:44, model/pipeline_version.go:37);
- a duplicate answers 409 (server/pipeline_upload_server.go:187,343), or 500 with
  ``legacy_duplicates=True`` as older servers do (same file at 2.0.5, lines 135 and 226);
- an uploaded spec must have schemaVersion 2.1.0 (template/v2_template.go:234-236), a pipeline
  name matching ``^[a-z0-9][a-z0-9-]{0,127}$`` (common/utils.go:35,110-124, checked from
  resource/resource_manager.go:519); a version name longer than 127 characters is refused with
  400 before any insert (2.17.0 validation/length.go:47,100, server/pipeline_upload_server.go:285;
  seen on the real server by tests/kfp_server);
- healthz answers ``{"commit_sha", "tag_name", "multi_user"}`` (main.go:556-581).

It does not do the real server's authorization (SubjectAccessReview per namespace) or run
anything.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import yaml

API = "/apis/v2beta1"

# google.rpc.Code values used in error bodies.
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 500: 13, 503: 14}


@dataclass
class RecordedRequest:
    """One request as the double received it. Header names are lower-case."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes

    def param(self, name: str) -> Optional[str]:
        """The first value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class ScriptedAnswer:
    """Answers the next ``times`` matching requests instead of the normal handler."""

    times: int
    status: int = 503
    message: str = "scripted failure"
    method: Optional[str] = None
    path: Optional[str] = None  # matches when the request path starts with this
    raw_body: Optional[bytes] = None  # sent as text/plain instead of the JSON error
    hang_seconds: float = 0.0  # sleep, then drop the connection without answering
    side_effect: Optional[Callable[[FakeKfpApi], None]] = None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and (self.path is None or path.startswith(self.path))
        )


class ApiError(Exception):
    """Raised by handlers to answer with a KFP-style error body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _State:
    pipelines: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    versions: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    package_texts: Dict[str, str] = field(default_factory=dict)  # version id -> uploaded YAML
    experiments: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    runs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    recurring_runs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # Argo Workflows of runs, with the ScheduledWorkflow that owns them (its recurring run id):
    # each Workflow a ScheduledWorkflow starts carries an owner reference to it
    # (backend/src/crd/controller/scheduledworkflow/.../scheduled_workflow.go), so deleting
    # the recurring run lets Kubernetes' garbage collector delete them, running or not, unless
    # the delete orphans them (propagation_policy=ORPHAN, from 2.16.0: DeleteRecurringRunRequest
    # in backend/api/v2beta1/recurring_run.proto; older servers ignore the parameter).
    workflows: Dict[str, Optional[str]] = field(default_factory=dict)
    garbage_collected: List[str] = field(default_factory=list)


class FakeKfpApi:
    """Test double of the KFP v2beta1 API (see the module docstring)."""

    def __init__(
        self,
        *,
        multi_user: bool = False,
        token: Optional[Union[str, Callable[[str], bool]]] = None,
        tls: Optional[Tuple[str, str]] = None,
        tag_name: str = "2.17.0",
        commit_sha: str = "unknown",
        legacy_duplicates: bool = False,
    ):
        """Creates the double; ``tls`` is (certificate file, key file) to serve https.

        ``tag_name`` is the backend version healthz reports ("unknown" on stock images before
        2.16.0 and on custom builds), ``commit_sha`` the commit it was built from;
        ``legacy_duplicates`` answers duplicates with 500 instead of 409, as servers before
        the 409 answer did. ``token`` (multi-user) is the one accepted Bearer token, or a
        function that judges one (`make e2e-cluster` asks the real API server's TokenReview,
        as KFP's server does).
        """
        self.multi_user = multi_user
        self.token = token
        self.tag_name = tag_name
        self.commit_sha = commit_sha
        self.legacy_duplicates = legacy_duplicates
        self._gates: List[Dict[str, Any]] = []
        self.requests: List[RecordedRequest] = []
        self.state = _State()
        self._script: List[ScriptedAnswer] = []
        self._lock = threading.RLock()
        self._clock = itertools.count()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.api = self  # type: ignore[attr-defined]
        self._tls = tls
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, listening: bool = True) -> FakeKfpApi:
        """Binds the port; with ``listening=False`` connections are refused until listen()."""
        self._server.server_bind()
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        if listening:
            self.listen()
        return self

    def listen(self) -> None:
        """Starts accepting connections."""
        self._server.server_activate()
        # A short poll interval makes stop() quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def listen_after(self, seconds: float) -> None:
        """Starts accepting connections ``seconds`` from now (a KFP that comes up late)."""
        timer = threading.Timer(seconds, self.listen)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        """Stops serving and frees the port."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """Base URL to pass as ``--host``."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting and inspection ------------------------------------------------------------

    def script(self, answer: ScriptedAnswer) -> None:
        """Queues a scripted answer; the first matching one with times left is used."""
        with self._lock:
            self._script.append(answer)

    def fail(self, times: int, status: int = 503, message: str = "scripted failure", **kw) -> None:
        """Shorthand for ``script(ScriptedAnswer(times, status, message, ...))``."""
        self.script(ScriptedAnswer(times=times, status=status, message=message, **kw))

    def gate(self, method: str, path: str, parties: int = 2) -> None:
        """Holds the next ``parties`` matching requests until all have arrived (a race)."""
        with self._lock:
            self._gates.append(
                {
                    "method": method,
                    "path": path,
                    "barrier": threading.Barrier(parties),
                    "left": parties,
                }
            )

    def _wait_at_gate(self, method: str, path: str) -> None:
        with self._lock:
            gate = next(
                (
                    g
                    for g in self._gates
                    if g["left"] and g["method"] == method and g["path"] == path
                ),
                None,
            )
            if gate is not None:
                gate["left"] -= 1
        if gate is not None:
            gate["barrier"].wait(timeout=30)

    def requests_to(self, method: str, path: str) -> List[RecordedRequest]:
        """Recorded requests with this method whose path starts with ``path``."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    def pipelines_named(self, name: str) -> List[Dict[str, Any]]:
        """Stored pipelines with this name (in any namespace)."""
        with self._lock:
            return [p for p in self.state.pipelines.values() if _same_name(p["name"], name)]

    def versions_of(self, pipeline_id: str) -> List[Dict[str, Any]]:
        """Stored versions of a pipeline, oldest first, each with its ``package_text``."""
        with self._lock:
            versions = [v for v in self.state.versions.values() if v["pipeline_id"] == pipeline_id]
            return [
                dict(v, package_text=self.state.package_texts[v["pipeline_version_id"]])
                for v in sorted(versions, key=lambda v: v["_order"])
            ]

    def add_pipeline(
        self,
        name: str,
        package_text: str,
        *,
        namespace: str = "",
        version_name: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Stores a pipeline (and, as the upload API does, a first version named after it).

        With ``version_name``, also adds that version: what a finished install leaves behind.
        """
        with self._lock:
            pipeline = self._create_pipeline(name, name, "", namespace)
            self._create_version(pipeline["pipeline_id"], name, name, "", package_text)
            if version_name:
                self._create_version(
                    pipeline["pipeline_id"], version_name, version_name, "", package_text
                )
            return pipeline

    def add_version(self, pipeline_id: str, name: str, package_text: str) -> Dict[str, Any]:
        """Stores a version of a stored pipeline (what a concurrent installer could add)."""
        with self._lock:
            return self._create_version(pipeline_id, name, name, "", package_text)

    # -- request handling --------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Dict[str, str], body: bytes):
        """Returns (status, content type, body bytes), or None to drop the connection."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, headers, body))
            answer = next((a for a in self._script if a.matches(method, path)), None)
            if answer is not None:
                answer.times -= 1
        self._wait_at_gate(method, path)
        if answer is not None:
            if answer.side_effect is not None:
                answer.side_effect(self)
            if answer.hang_seconds:
                time.sleep(answer.hang_seconds)
                return None
            if answer.raw_body is not None:
                return answer.status, "text/plain", answer.raw_body
            return _error(answer.status, answer.message)
        if "kubeflow-userid" in headers:  # Istio rejects this header from workloads
            return 403, "text/plain", b"RBAC: access denied"
        try:
            if self.multi_user and path != f"{API}/healthz":
                self._authenticate(headers)
            with self._lock:
                status, payload = self._route(method, path, query, headers, body)
        except ApiError as error:
            return _error(error.status, error.message)
        return status, "application/json", json.dumps(payload).encode()

    def _authenticate(self, headers: Dict[str, str]) -> None:
        bearer = headers.get("authorization", "")
        if callable(self.token):
            accepted = bearer.startswith("Bearer ") and self.token(bearer[len("Bearer ") :])
        else:
            accepted = bearer == f"Bearer {self.token}"
        if not accepted:
            raise ApiError(
                401,
                "Failed to authenticate requests: Request header error: there is no user "
                "identity header.",
            )

    def _route(self, method, path, query, headers, body) -> Tuple[int, Dict[str, Any]]:
        q = {k: v[0] for k, v in query.items()}
        segments = path[len(API) :].strip("/").split("/") if path.startswith(API) else []
        if method == "GET" and segments == ["healthz"]:
            return 200, {
                "commit_sha": self.commit_sha,
                "tag_name": self.tag_name,
                "multi_user": self.multi_user,
                "pipeline_store": "database",
            }
        if method == "POST" and segments == ["pipelines", "upload"]:
            return 200, self._upload_pipeline(q, headers, body)
        if method == "POST" and segments == ["pipelines", "upload_version"]:
            return 200, self._upload_version(q, headers, body)
        if method == "GET" and segments == ["pipelines"]:
            items = [p for p in self.state.pipelines.values() if _in_namespace(p, q)]
            return 200, _page(items, q, "pipelines")
        if method == "GET" and len(segments) == 3 and segments[0::2] == ["pipelines", "versions"]:
            if segments[1] not in self.state.pipelines:
                raise ApiError(404, f"Pipeline {segments[1]} not found")
            items = [v for v in self.state.versions.values() if v["pipeline_id"] == segments[1]]
            return 200, _page(items, q, "pipeline_versions")
        if segments == ["experiments"]:
            if method == "POST":
                return 200, self._create_experiment(json.loads(body or b"{}"))
            items = [e for e in self.state.experiments.values() if _in_namespace(e, q)]
            return 200, _page(items, q, "experiments")
        if segments == ["runs"]:
            if method == "POST":
                return 200, self._create_run(json.loads(body or b"{}"), "run_id", self.state.runs)
            items = [
                r
                for r in self.state.runs.values()
                if q.get("experiment_id") in (None, r.get("experiment_id")) and self._reported(r)
            ]
            return 200, _page(items, q, "runs")
        if len(segments) == 2 and segments[0] == "recurringruns":
            return 200, self._change_recurring_run(method, segments[1], q)
        if segments == ["recurringruns"]:
            if method == "POST":
                return 200, self._create_run(
                    json.loads(body or b"{}"), "recurring_run_id", self.state.recurring_runs
                )
            items = [
                r
                for r in self.state.recurring_runs.values()
                if q.get("experiment_id") in (None, r.get("experiment_id"))
            ]
            return 200, _page(items, q, "recurringRuns")
        raise ApiError(404, f"Not Found: {method} {path} is not served by this test double")

    def _upload_pipeline(self, q, headers, body) -> Dict[str, Any]:
        filename, text = _uploaded_file(headers, body)
        # As the real server: name from ?name, else ?display_name, else the file name.
        name = q.get("name") or q.get("display_name") or filename
        namespace = q.get("namespace", "")
        if any(
            _same_name(p["name"], name) and p["namespace"] == namespace
            for p in self.state.pipelines.values()
        ):
            raise ApiError(
                self._duplicate_status, "Failed to create a pipeline and a pipeline version"
            )
        display_name = q.get("display_name") or name
        description = q.get("description", "")
        pipeline = self._create_pipeline(name, display_name, description, namespace)
        # The upload API names the first version after the pipeline.
        self._create_version(pipeline["pipeline_id"], name, display_name, description, text)
        return pipeline

    def _upload_version(self, q, headers, body) -> Dict[str, Any]:
        filename, text = _uploaded_file(headers, body)
        pipeline_id = q.get("pipelineid")
        if not pipeline_id or pipeline_id not in self.state.pipelines:
            raise ApiError(400, "Failed to create a pipeline version")
        name = q.get("name") or q.get("display_name") or filename
        if len(name) > 127:  # checked before the insert (validation/length.go:47)
            raise ApiError(
                400, "Invalid input error: PipelineVersion.Name length cannot exceed 127"
            )
        if any(
            v["pipeline_id"] == pipeline_id and _same_name(v["name"], name)
            for v in self.state.versions.values()
        ):
            raise ApiError(self._duplicate_status, "Failed to create a pipeline version")
        display_name = q.get("display_name") or name
        return self._create_version(pipeline_id, name, display_name, q.get("description", ""), text)

    def _create_experiment(self, body: Dict[str, Any]) -> Dict[str, Any]:
        namespace = body.get("namespace") or ""
        if any(
            _same_name(e["display_name"], body.get("display_name") or "")
            and e["namespace"] == namespace
            for e in self.state.experiments.values()
        ):
            raise ApiError(
                self._duplicate_status, f"Experiment {body.get('display_name')} already exists"
            )
        experiment = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": body.get("display_name"),
            "description": body.get("description") or "",
            "namespace": namespace,
            "created_at": _now(),
            "storage_state": "AVAILABLE",
            "_order": next(self._clock),
        }
        self.state.experiments[experiment["experiment_id"]] = experiment
        return _public(experiment)

    def _create_run(self, body: Dict[str, Any], id_key: str, store: Dict[str, Any]):
        """Creates a run or a recurring run that points at a stored pipeline version."""
        if body.get("experiment_id") and body["experiment_id"] not in self.state.experiments:
            raise ApiError(404, f"Experiment {body['experiment_id']} not found")
        reference = body.get("pipeline_version_reference") or {}
        version = self.state.versions.get(reference.get("pipeline_version_id", ""))
        if version is None or version["pipeline_id"] != reference.get("pipeline_id"):
            raise ApiError(400, "Invalid input error: pipeline version reference not found")
        created = dict(body, created_at=_now(), _order=next(self._clock))
        created[id_key] = str(uuid.uuid4())
        if id_key == "run_id":
            created["state"] = "PENDING"
        else:
            created["status"] = "ENABLED" if body.get("mode") != "DISABLE" else "DISABLED"
        store[created[id_key]] = created
        return _public(created)

    @property
    def _duplicate_status(self) -> int:
        return 500 if self.legacy_duplicates else 409

    def start_scheduled_run(
        self,
        recurring_run_id: str,
        state: Optional[str] = "RUNNING",
        listed_after_disable: Optional[float] = None,
    ) -> str:
        """What the ScheduledWorkflow controller does at a cron tick: a run whose Workflow is
        owned by the recurring run. ``state`` None: no state in the answer, as KFP 2.0.5 reports
        a run before Argo gives its Workflow a phase (seen on the real server, make e2e-kfp).

        ``listed_after_disable``: the controller created the Workflow just before the disable
        took effect and KFP 2.0.5's persistence agent reports it to the server (which is what
        lists it) that many seconds after the disable. Once the recurring run is deleted the
        report fails and the run is never listed (2.0.5 ReportWorkflowResource looks up the
        recurring run first, backend/src/apiserver/resource/resource_manager.go:1170-1173).
        Returns the run id."""
        with self._lock:
            recurring = self.state.recurring_runs[recurring_run_id]
            run_id = str(uuid.uuid4())
            self.state.runs[run_id] = {
                "run_id": run_id,
                "display_name": f"{recurring['display_name']} scheduled",
                "experiment_id": recurring.get("experiment_id"),
                "recurring_run_id": recurring_run_id,
                "created_at": _now(),
                "_order": next(self._clock),
                "_listed_after_disable": listed_after_disable,
            }
            if state is not None:
                self.state.runs[run_id]["state"] = state
            self.state.workflows[run_id] = recurring_run_id
            return run_id

    def _reported(self, run: Dict[str, Any]) -> bool:
        """Whether the server lists the run yet (see ``start_scheduled_run``)."""
        lag = run.get("_listed_after_disable")
        if lag is None:
            return True
        recurring = self.state.recurring_runs.get(run["recurring_run_id"])
        disabled_at = recurring.get("_disabled_at") if recurring else None
        return disabled_at is not None and time.monotonic() >= disabled_at + lag

    def _backend_at_least(self, version: Tuple[int, int]) -> bool:
        numbers = self.tag_name.split(".")[:2]
        return all(n.isdigit() for n in numbers) and tuple(map(int, numbers)) >= version

    def _change_recurring_run(self, method: str, target: str, q: Dict[str, str]) -> Dict[str, Any]:
        """DELETE /recurringruns/{id}, POST /recurringruns/{id}:disable or :enable."""
        recurring_id, _, verb = target.partition(":")
        if recurring_id not in self.state.recurring_runs:
            raise ApiError(404, f"Recurring run {recurring_id} not found")
        if method == "DELETE" and not verb:
            del self.state.recurring_runs[recurring_id]
            orphan = q.get("propagation_policy") == "ORPHAN" and self._backend_at_least((2, 16))
            for run_id, owner in list(self.state.workflows.items()):
                if owner != recurring_id:
                    continue
                if orphan:
                    self.state.workflows[run_id] = None
                else:  # the garbage collector deletes the Workflow, even a running one
                    del self.state.workflows[run_id]
                    self.state.garbage_collected.append(run_id)
        elif method == "POST" and verb in ("disable", "enable"):
            status = "DISABLED" if verb == "disable" else "ENABLED"
            self.state.recurring_runs[recurring_id]["status"] = status
            if verb == "disable":
                self.state.recurring_runs[recurring_id].setdefault("_disabled_at", time.monotonic())
        else:
            raise ApiError(404, f"Not Found: {method} recurringruns/{target}")
        return {}

    def _create_pipeline(self, name, display_name, description, namespace) -> Dict[str, Any]:
        pipeline = {
            "pipeline_id": str(uuid.uuid4()),
            "name": name,
            "display_name": display_name,
            "description": description,
            "namespace": namespace,
            "created_at": _now(),
            "_order": next(self._clock),
        }
        self.state.pipelines[pipeline["pipeline_id"]] = pipeline
        return _public(pipeline)

    def _create_version(self, pipeline_id, name, display_name, description, text):
        version = {
            "pipeline_version_id": str(uuid.uuid4()),
            "pipeline_id": pipeline_id,
            "name": name,
            "display_name": display_name,
            "description": description,
            "created_at": _now(),
            "_order": next(self._clock),
        }
        self.state.versions[version["pipeline_version_id"]] = version
        self.state.package_texts[version["pipeline_version_id"]] = text
        return _public(version)


class _Handler(BaseHTTPRequestHandler):
    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.api.handle(self.command, self.path, headers, body)  # type: ignore
        if answer is None:
            self.close_connection = True
            return
        status, content_type, payload = answer
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


def _error(status: int, message: str) -> Tuple[int, str, bytes]:
    body = {"error": message, "code": _GRPC_CODES.get(status, 2), "message": message, "details": []}
    return status, "application/json", json.dumps(body).encode()


def _uploaded_file(headers: Dict[str, str], body: bytes) -> Tuple[str, str]:
    """Returns (file name, text) of the multipart ``uploadfile`` part, as the server reads it."""
    head = f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    for part in message.iter_parts() if message.is_multipart() else []:
        if part.get_param("name", header="content-disposition") == "uploadfile":
            text = part.get_payload(decode=True).decode("utf-8")
            _validate_pipeline_spec(next(iter(yaml.safe_load_all(text)), None))
            return part.get_filename() or "pipeline.yaml", text
    raise ApiError(400, "Failed to read pipeline from file")


def _validate_pipeline_spec(spec: Any) -> None:
    """The checks the real server makes on upload (see the module docstring for the lines)."""
    if not isinstance(spec, dict) or not {"pipelineInfo", "root"} <= spec.keys():
        raise ApiError(400, "Failed to read a pipeline spec file")
    if spec.get("schemaVersion") != "2.1.0":
        raise ApiError(
            400,
            "Invalid input error: KFP only supports schema version 2.1.0, but the pipeline spec "
            f"has version {spec.get('schemaVersion')}",
        )
    name = (spec.get("pipelineInfo") or {}).get("name") or ""
    if not name:
        raise ApiError(400, "Invalid input error: invalid v2 pipeline spec: name is empty")
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,127}$", name):
        raise ApiError(
            400,
            "Invalid input error: pipeline's name must contain only lowercase alphanumeric "
            "characters or '-' and must start with alphanumeric characters",
        )


def _same_name(a: str, b: str) -> bool:
    """Name comparison of MySQL's default (case-insensitive) collation."""
    return a.casefold() == b.casefold()


def _in_namespace(item: Dict[str, Any], q: Dict[str, str]) -> bool:
    return item.get("namespace", "") == q.get("namespace", "")


def _page(items: List[Dict[str, Any]], q: Dict[str, str], key: str) -> Dict[str, Any]:
    """Filters, orders and pages ``items`` like a KFP list call; empty lists are omitted."""
    items = sorted(
        (i for i in items if _matches_filter(i, q.get("filter"))), key=lambda i: i["_order"]
    )
    start = int(q.get("page_token") or 0)
    size = int(q.get("page_size") or 20)
    page = items[start : start + size]
    response: Dict[str, Any] = {"total_size": len(items)}
    if page:  # protojson leaves out empty repeated fields, as the real server does
        response[key] = [_public(i) for i in page]
    if start + size < len(items):
        response["next_page_token"] = str(start + size)
    return response


def _matches_filter(item: Dict[str, Any], raw_filter: Optional[str]) -> bool:
    """Applies a filter in the JSON form kfp sends (EQUALS / IS_SUBSTRING on string keys)."""
    if not raw_filter:
        return True
    try:
        predicates = json.loads(raw_filter).get("predicates", [])
    except (ValueError, AttributeError) as error:
        raise ApiError(400, f"Invalid input error: failed to parse filter: {error}") from None
    for predicate in predicates:
        operation = predicate.get("operation")
        value = predicate.get("stringValue", predicate.get("string_value"))
        actual = item.get(predicate.get("key"))
        if operation in ("EQUALS", 1):  # compared as MySQL compares: case-insensitively
            if not isinstance(actual, str) or not _same_name(actual, value or ""):
                return False
        elif operation in ("IS_SUBSTRING", 9):
            if value not in (actual or ""):
                return False
        else:
            raise ApiError(400, f"Invalid input error: unsupported filter operation {operation}")
    return True


def _public(item: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SilentServer:
    """TEST DOUBLE of a KFP API that accepts connections and never answers.

    What a hung ml-pipeline pod, or a proxy that holds requests, looks like to a client. With
    ``trickle_seconds`` it answers headers at once and then one body byte per interval, for
    ever: each socket read succeeds within any read timeout, so only a whole-command deadline
    ends it.
    """

    def __init__(self, *, trickle_seconds: float = 0.0):
        self.trickle_seconds = trickle_seconds
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._stopped = threading.Event()
        self._connections: List[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._socket.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self._connections.append(connection)
            if self.trickle_seconds:
                threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        try:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000000\r\n\r\n"
            )
            while not self._stopped.wait(self.trickle_seconds):
                connection.sendall(b" ")
        except OSError:
            pass

    def stop(self) -> None:
        self._stopped.set()
        for connection in self._connections:
            connection.close()
        self._socket.close()
