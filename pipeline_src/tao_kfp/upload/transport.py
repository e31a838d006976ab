"""Transport quirks of the kfp Client: bounded requests, DNS in a thread, a hard stop, scratch.

kfp's Client and kfp_server_api's REST client send requests without timeouts and let urllib3
retry below us; these helpers patch the one client ``tao_kfp.upload.api.KfpApi`` builds so that
every request, name lookup and slow answer ends within the command's deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from tao_kfp.upload.errors import REACHABILITY_CHECKS, UploadError


def make_client(
    host: str,
    namespace: Optional[str],
    token_path: Optional[str],
    ca_bundle: Optional[str],
    scratch: Path,
) -> Any:
    """Builds the kfp Client without network traffic and without touching $HOME."""
    import warnings

    from kfp.client import Client
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    # The kubelet rotates projected tokens; these credentials re-read the file for every request.
    credentials = ServiceAccountTokenVolumeCredentials(token_path) if token_path else None
    with _private_kfp_context(Client, scratch / "kfp-context.json"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2+"
        client = Client(host=host, credentials=credentials, ssl_ca_cert=ca_bundle)
        # An empty namespace means "none" (standalone KFP); calls then send no namespace.
        client.set_user_namespace(namespace or "")
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


def bound_requests(
    client: Any,
    connect_timeout_seconds: float,
    read_timeout_seconds: float,
    time_left: Callable[[], float],
    hostname: str,
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
        connect = min(connect_timeout_seconds, left)
        _resolve_within(hostname, connect)
        kwargs["_request_timeout"] = (connect, min(read_timeout_seconds, left))
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


class Stage:
    """What the command is doing, for the message of an expired deadline."""

    reading: Optional[str] = None  # set while local inputs are read; None once on the network


@contextlib.contextmanager
def hard_deadline(seconds: float, host: str) -> Iterator[Stage]:
    """Raises ``UploadError`` in the main thread once ``seconds`` (+ grace) have passed.

    It covers the whole command: reading the inputs (a FIFO or a slow volume would block
    forever) as well as every request.
    """
    import signal
    import threading

    stage = Stage()
    if threading.current_thread() is not threading.main_thread():
        yield stage  # signals reach the main thread only; the per-request timeouts still apply
        return

    def expire(signum: int, frame: Any) -> None:
        if stage.reading:
            raise UploadError(
                f"--deadline-seconds {seconds:g} reached while reading {stage.reading}: check "
                "that they are files of normal size on a volume that answers."
            )
        raise UploadError(
            f"--deadline-seconds {seconds:g} reached: the KFP API at {host} accepted the "
            f"connection but did not finish answering in time. {REACHABILITY_CHECKS}"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds + _HARD_STOP_GRACE_SECONDS)
    try:
        yield stage
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
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


def is_transient(error: BaseException) -> bool:
    """True for failures worth retrying: unreachable, timed out, HTTP 5xx or 429."""
    import socket

    import urllib3
    from kfp_server_api import ApiException

    if isinstance(error, ApiException):
        return error.status == 429 or (error.status or 0) >= 500  # status 0: TLS, not transient
    if is_tls_error(error):
        return False
    if isinstance(error, urllib3.exceptions.LocationValueError):  # a malformed host never heals
        return False
    # Not OSError in general: an unreadable token file is an OSError too, and never heals.
    network_errors = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, socket.timeout)
    return isinstance(error, network_errors)


def is_tls_error(error: BaseException) -> bool:
    """True when TLS verification failed (kfp_server_api reports it as status 0)."""
    import urllib3
    from kfp_server_api import ApiException

    if isinstance(error, ApiException):
        return error.status == 0
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        error = error.reason
    return isinstance(error, urllib3.exceptions.SSLError)


def describe(error: Optional[BaseException]) -> str:
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
