"""The shipped pipeline, end to end, in containers (`make e2e`): kfp.local's DockerRunner through
podman's Docker-compatible socket. CPU steps run in the tools image, GPU steps in the tao-step
image built on the TAO stand-in (hack/e2e.sh builds both), the workspace is a host folder
mounted at the same path, the way the claim is mounted at workspace.mountPath. The result must
match `make demo` (the same pipeline with kfp.local's SubprocessRunner) within noise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from e2e_helpers import image

from tao_kfp.cpu_backend.train import KEEP_CHECKPOINTS_ENV
from tao_kfp.environment import EnvironmentConfig
from tao_kfp.local_run import LOCAL_MODEL_KEY, prepare_workspace, run_local
from tao_kfp.tao import MODEL_KEY_ENV

pytestmark = pytest.mark.e2e

# The same seeded split and training on the same torch build: only thread scheduling differs.
ACCURACY_NOISE = 0.03
# The torch version pyproject.toml pins for the CPU backend (the stand-in image installs it).
TORCH_PIN = re.search(
    r'"torch==([^"]+)"', (Path(__file__).parents[2] / "pyproject.toml").read_text()
).group(1)


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory):
    """podman's Docker-compatible API on a socket of its own, for the docker SDK kfp uses."""
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
    yield f"unix://{socket}"
    service.terminate()
    service.wait(timeout=30)


def container_environment(workspace: Path) -> EnvironmentConfig:
    """The cluster's default environment config, but the e2e images and a host workspace, on
    the TAO 3 route the stand-in plays (the chart's default route, 6, is NVIDIA's code)."""
    return EnvironmentConfig.model_validate(
        {
            "images": {"tools": image("tools"), "tao": image("tao-step"), "pullPolicy": "Never"},
            "workspace": {"mountPath": str(workspace)},
            "tao": {"version": "3"},
        }
    )


def test_pipeline_in_containers_matches_make_demo(docker_host, tmp_path, monkeypatch, capfd):
    import docker
    from kfp import local

    monkeypatch.setenv("DOCKER_HOST", docker_host)
    reference = run_local(tmp_path / "subprocess")
    assert reference.status == "SUCCESS", reference.steps

    out = tmp_path / "containers"
    workspace = out / "workspace"
    prepare_workspace(workspace, None, 32)
    environment = container_environment(workspace)
    # The steps run as the images' user (uid 1000, as the chart's workspace.uid); the folders
    # this process creates stand in for the claim and KFP's artifact store, both writable to it.
    subprocess.run(["chown", "-R", "1000:1000", str(out)], check=True)
    runner = local.DockerRunner(
        user="1000:1000",
        network_mode="host",
        mounts=[docker.types.Mount(target=str(workspace), source=str(workspace), type="bind")],
        # kfp.local mounts no Secrets: the chart's default model key stands in, as in make demo.
        environment={MODEL_KEY_ENV: LOCAL_MODEL_KEY, KEEP_CHECKPOINTS_ENV: "last-best"},
    )
    previous_umask = os.umask(0)  # run folders kfp.local creates here stay writable to uid 1000
    try:
        summary = run_local(out, runner=runner, environment=environment)
    finally:
        os.umask(previous_umask)
    log = capfd.readouterr().out
    print(
        json.dumps({"subprocess": _figures(reference), "containers": _figures(summary)}, indent=2)
    )
    assert summary.status == "SUCCESS", summary.steps
    assert [s["task"] for s in summary.steps] == [s["task"] for s in reference.steps]
    for key in ("accuracy_before_pruning", "accuracy_after_pruning"):
        assert abs(getattr(summary, key) - getattr(reference, key)) <= ACCURACY_NOISE, key
    assert summary.parameters_before_pruning == reference.parameters_before_pruning
    assert Path(summary.final_model).is_file() or Path(summary.final_model).is_dir()
    # The GPU steps ran TAO's commands from the stand-in, not the host's CPU backend.
    package = (out / "pipeline.local.yaml").read_text()
    assert image("tao-step") in package and image("tools") in package
    # kfp.local's DockerRunner prints the image of each task it starts.
    for name in ("tools", "tao-step"):
        assert f"Found image {image(name)!r}" in log, f"no step ran in {image(name)}"


def _figures(summary) -> dict:
    return {
        "status": summary.status,
        "pipeline_seconds": summary.pipeline_seconds,
        "accuracy_before_pruning": summary.accuracy_before_pruning,
        "accuracy_after_pruning": summary.accuracy_after_pruning,
        "parameters": [summary.parameters_before_pruning, summary.parameters_after_pruning],
        "steps": {s["task"]: s["seconds"] for s in summary.steps},
    }


def test_tao_step_on_the_stand_in_keeps_tao_python_and_puts_its_own_first():
    """The layering of images/tao-step, for real: KFP's `python3` is the isolated venv with kfp,
    TAO's `python` and commands are the base's own (here the stand-in's, with torch)."""
    script = (
        "set -e; command -v python3; python3 -c 'import kfp, tao_kfp; print(kfp.__version__)';"
        " command -v python; python -c 'import torch; print(torch.__version__)';"
        " command -v classification; classification --help > /dev/null; echo ok"
    )
    out = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            "--pull=never",
            "--entrypoint=sh",
            image("tao-step"),
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "/opt/tao-kfp/bin/python3"
    assert lines[2] == "/usr/local/bin/python"
    # The pinned torch, whichever build the wheelhouse offered: the CPU wheel where one is
    # given, PyPI's CUDA build (which also runs on the CPU) where only PyPI is reachable.
    assert lines[3].split("+")[0] == TORCH_PIN, lines[3]
    assert lines[-2:] == ["/usr/local/bin/classification", "ok"]
