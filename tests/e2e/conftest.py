"""Fixtures of the container end-to-end tests (`make e2e`)."""

from __future__ import annotations

import subprocess
import time

import pytest


def _podman_gone_as_docker_not_found(original):
    """podman's answer for a container removed while it is read, made Docker's.

    kfp.local's DockerRunner starts every step with ``auto_remove=True`` and reads its logs and
    exit status afterwards; a container already gone is ``docker.errors.NotFound`` (HTTP 404),
    which it handles (kfp 2.17.3 kfp/local/docker_task_handler.py:143-160; our run_local then
    checks the step's output files). podman's Docker API answers a container removed in the
    middle of such a read with HTTP 500 "... does not exist in database: no such container"
    (seen on a 2 s step under load), which kfp does not catch. Only that answer is mapped.
    """
    import docker

    def translate(error):
        response = error.response
        if (
            response is not None
            and response.status_code == 500
            and "no such container" in (response.text or "").lower()
        ):
            raise docker.errors.NotFound(error, response=response, explanation=response.text)
        return original(error)

    return translate


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory):
    """podman's Docker-compatible API on a socket of its own, for the docker SDK kfp uses."""
    import docker.api.client

    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not socket.exists():
        if service.poll() is not None or time.monotonic() > deadline:
            service.kill()
            pytest.fail(f"podman system service did not open {socket} (exit {service.poll()})")
        time.sleep(0.2)
    with pytest.MonkeyPatch.context() as patch:
        name = "create_api_error_from_http_exception"
        original = getattr(docker.api.client, name)
        patch.setattr(docker.api.client, name, _podman_gone_as_docker_not_found(original))
        yield f"unix://{socket}"
    service.terminate()
    service.wait(timeout=30)
