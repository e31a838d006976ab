"""TEST DOUBLE of the two Kubernetes core/v1 API reads tao-kfp makes. It is not an API server.

``FakeKubeApi`` is a small threaded HTTP(S) server on 127.0.0.1 (random port) that answers:

- GET /api/v1/namespaces/NS/secrets/NAME with a Secret (``data`` base64, as the API server
  returns it) from ``secret_data(NS, NAME)``;
- GET /api/v1/nodes?labelSelector=k=v,... with a NodeList of the ``nodes()`` objects that carry
  all those labels (equality selectors only).

Errors are v1 Status objects as the real API server sends them (kind Status, status Failure,
reason and code): 404 NotFound for anything else or an unknown Secret, 401 Unauthorized when a
``token`` is set and the request lacks ``Authorization: Bearer <token>``, and whatever
``KubeStatus`` the ``secret_data`` callable raises (403 Forbidden for RBAC, say).
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse


class KubeStatus(Exception):
    """Raised by a lookup to answer with a v1 Status of this code and reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


def status_body(code: int, reason: str) -> dict:
    """A failed request's v1 Status object (meta/v1 Status), as the API server answers."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
    }


def matches(labels: Dict[str, str], selector: str) -> bool:
    """Whether ``labels`` satisfy an equality-based ``labelSelector`` ("k=v,k2=v2")."""
    wanted = dict(item.split("=", 1) for item in selector.split(",") if item)
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeKubeApi:
    """Serves the Secret read and the node list; ``stop()`` shuts it down.

    ``secret_data(namespace, name)`` returns the Secret's ``data`` (key -> base64 text), or None
    for 404, or raises ``KubeStatus``; it is called on every request, so tests may change what
    it reads. ``nodes()`` returns Node objects (``metadata.labels``, ``status.allocatable``).
    ``tls`` is a (cert file, key file) pair: https instead of http.
    """

    def __init__(
        self,
        secret_data: Callable[[str, str], Optional[Dict[str, str]]],
        nodes: Callable[[], List[dict]],
        token: Optional[str] = None,
        tls: Optional[Tuple[str, str]] = None,
    ):
        self.token = token
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server API)
                try:
                    self._send(200, double._answer(self.path, self.headers.get("Authorization")))
                except KubeStatus as status:
                    self._send(status.code, status_body(status.code, status.reason))

        self._secret_data, self._nodes = secret_data, nodes
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, path: str, authorization: Optional[str]) -> dict:
        if self.token is not None:
            # the kubernetes client sends "bearer <token>"; the scheme is case-insensitive
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or token != self.token:
                raise KubeStatus(401, "Unauthorized")
        url = urlparse(path)
        parts = url.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["secrets"]:
            namespace, name = parts[3], parts[5]
            data = self._secret_data(namespace, name)
            if data is None:
                raise KubeStatus(404, "NotFound")
            return {
                "kind": "Secret",
                "apiVersion": "v1",
                "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace},
                "data": data,
            }
        if parts == ["api", "v1", "nodes"]:
            selector = parse_qs(url.query).get("labelSelector", [""])[0]
            items = [n for n in self._nodes() if matches(n["metadata"].get("labels", {}), selector)]
            return {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}
        raise KubeStatus(404, "NotFound")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
