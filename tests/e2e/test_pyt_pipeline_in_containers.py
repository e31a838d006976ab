"""The PyTorch route (tao.version "6") end to end in containers (`make e2e`), on NVIDIA's code.

The shipped package files/pipelines/tao-classification-pyt.yaml runs through kfp.local's
DockerRunner (podman's Docker-compatible socket): CPU steps in the tools image, training steps
in ``tao-pyt-step`` and the engine steps in ``tao-pyt-deploy-step``, images/tao-step as shipped
on the images of NVIDIA's wheels (images/tao-pyt; hack/e2e.sh builds all of them). The
workspace is a host folder mounted at its own path, as the claim is at workspace.mountPath.
Every step runs as the images' own user (uid 1000, no ``user`` given) with no network.

The same run under make demo-tao's runner (SubprocessRunner on the envs of make tao-env) is the
reference: the accuracies before and after compression and the model sizes, read from the
files NVIDIA's code wrote in the containers, must agree with it within noise, and tao-deploy
must stop at the same TensorRT call (tao-env/deploy-stand-ins: ``engine/builder.py:100``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict

import pytest
import yaml
from e2e_helpers import image

from tao_kfp.environment import EnvironmentConfig
from tao_kfp.local_run import LOCAL_MODEL_KEY, nvidia_cpu_env, prepare_workspace, run_local
from tao_kfp.package import load_package
from tao_kfp.routes import pyt
from tao_kfp.steps.common import size_mb
from tao_kfp.tao import MODEL_KEY_ENV

pytestmark = pytest.mark.e2e

# Same seed, data, wheels and torch build on both sides: only thread scheduling differs.
ACCURACY_NOISE = 0.03
# A checkpoint also pickles its spec's paths, which differ in length between the two runs.
SIZE_NOISE_MB = 0.01
STOP = "nvidia_tao_deploy/engine/builder.py:100 trt.init_libnvinfer_plugins("
IMAGES = {"cpu": "tools", "gpu": "tao-pyt-step", "deploy": "tao-pyt-deploy-step"}


def pyt_environment(workspace: Path) -> EnvironmentConfig:
    """The chart's environment for tao.version "6" (set here, never the chart's default), with
    the e2e images and a host workspace."""
    return EnvironmentConfig.model_validate(
        {
            "images": {
                "tools": image(IMAGES["cpu"]),
                "tao": image(IMAGES["gpu"]),
                "taoDeploy": image(IMAGES["deploy"]),
                "pullPolicy": "Never",
            },
            "workspace": {"mountPath": str(workspace)},
            "tao": {"version": "6"},
        }
    )


def step_results(experiment: Path, step: str) -> Path:
    """The results folder of a step: its spec's ``results_dir`` (step 1 wrote every spec)."""
    spec = yaml.safe_load((experiment / "specs" / f"{step}.yaml").read_text())
    return Path(spec["results_dir"])


def compressed_model(experiment: Path, compression: str) -> Path:
    """What compress left: torchao's quantized checkpoint, or distill's student alone."""
    if compression == "quantize":
        spec = yaml.safe_load((experiment / "specs" / "compress.yaml").read_text())
        return Path(spec["quantize"]["results_dir"]) / "quantized_model_torchao.pth"
    return step_results(experiment, "compress") / "distill" / "student.pth"


def nvidia_figures(experiment: Path, compression: str) -> Dict[str, float]:
    """Accuracies and sizes read straight from the files NVIDIA's code wrote."""
    export = yaml.safe_load((experiment / "specs" / "export.yaml").read_text())
    return {
        "accuracy_before": pyt.accuracy(
            pyt.read_results_csv(step_results(experiment, "evaluate") / "evaluate" / "result.csv")
        ),
        "accuracy_after": pyt.accuracy(
            pyt.read_results_csv(
                step_results(experiment, "evaluate_compressed") / "evaluate" / "result.csv"
            )
        ),
        "trained_model": size_mb(
            step_results(experiment, "train") / "train" / "classifier_model_latest.pth"
        ),
        "compressed_model": size_mb(compressed_model(experiment, compression)),
        "exported_onnx": size_mb(export["export"]["onnx_file"]),
    }


# CI runs quantize only: distill in the containers takes about 11 of the phase's 15 minutes
# (docs/tao-pytorch-route.md). E2E_PYT_COMPRESSIONS="quantize distill" runs both.
E2E_COMPRESSIONS = os.environ.get("E2E_PYT_COMPRESSIONS", "quantize").split()
_unknown = sorted(set(E2E_COMPRESSIONS) - set(pyt.COMPRESSIONS))
if _unknown:
    raise pytest.UsageError(
        f"E2E_PYT_COMPRESSIONS names {_unknown}; "
        f"the route's compressions are {list(pyt.COMPRESSIONS)}"
    )


@pytest.fixture(scope="module", params=E2E_COMPRESSIONS)
def runs(request, docker_host, tmp_path_factory):
    """make demo-tao's run (the reference), then the same pipeline in the containers."""
    import docker
    from kfp import local

    compression = request.param
    root = tmp_path_factory.mktemp(f"pyt-{compression}")
    parameters = {"compression": compression}
    reference = run_local(root / "subprocess", tao_version="6", parameters=parameters)
    out = root / "containers"
    workspace = out / "workspace"
    prepare_workspace(workspace, None, 32)
    # The steps run as the images' user, uid 1000 (the chart's workspace.runAsUser): the folders
    # this process creates stand in for the claim and KFP's artifact store, both theirs.
    subprocess.run(["chown", "-R", "1000:1000", str(out)], check=True)
    runner = local.DockerRunner(
        network_mode="none",
        mounts=[docker.types.Mount(target=str(workspace), source=str(workspace), type="bind")],
        # kfp.local mounts no Secrets: the chart's default model key stands in, as in make demo.
        environment={MODEL_KEY_ENV: LOCAL_MODEL_KEY, **nvidia_cpu_env()},
    )
    previous_umask = os.umask(0)  # run folders kfp.local creates here stay writable to uid 1000
    previous_host = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker_host
    try:
        summary = run_local(
            out, parameters=parameters, runner=runner, environment=pyt_environment(workspace)
        )
    finally:
        os.umask(previous_umask)
        if previous_host is None:
            os.environ.pop("DOCKER_HOST")
        else:
            os.environ["DOCKER_HOST"] = previous_host
    figures = {"subprocess": _figures(reference), "containers": _figures(summary)}
    print(json.dumps({compression: figures}, indent=2))
    return compression, reference, summary, out


def _figures(summary) -> dict:
    return {
        "status": summary.status,
        "pipeline_seconds": summary.pipeline_seconds,
        "accuracy_before_compression": summary.accuracy_before_pruning,
        "accuracy_after_compression": summary.accuracy_after_pruning,
        "model_sizes_mb": summary.model_sizes_mb,
        "notes": summary.notes,
        "error": summary.error,
        "steps": {s["task"]: [s["status"], s["seconds"]] for s in summary.steps},
    }


def test_the_whole_route_runs_to_tao_deploys_first_tensorrt_call(runs):
    _, reference, summary, _ = runs
    assert reference.status == "SUCCESS", (reference.failed_step, reference.error)
    assert summary.status == "SUCCESS", (summary.failed_step, summary.error)
    assert [s["task"] for s in summary.steps] == [s["task"] for s in reference.steps]
    assert {s["task"] for s in summary.steps} == set(pyt.STEP_KINDS)
    # gen-trt-engine ran NVIDIA's tao-deploy up to the stand-in, exactly where demo-tao stops.
    stops = [n for n in summary.notes if n.startswith("gen-trt-engine: ")]
    assert stops and stops[0].startswith(f"gen-trt-engine: {STOP}"), summary.notes
    assert sorted(summary.notes) == sorted(reference.notes)
    experiment = Path(summary.experiment_dir)
    engine_results = step_results(experiment, "gen_trt_engine")
    assert (engine_results / "stopped_at.txt").read_text().startswith(STOP)
    assert pyt.read_status(engine_results, "gen_trt_engine").entries[0]["status"] == "STARTED"
    engine = yaml.safe_load((engine_results / "spec.yaml").read_text())["gen_trt_engine"]
    assert not Path(engine["trt_engine"]).exists()


def test_nvidias_figures_in_the_containers_match_make_demo_tao(runs):
    compression, reference, summary, _ = runs
    mine = nvidia_figures(Path(summary.experiment_dir), compression)
    theirs = nvidia_figures(Path(reference.experiment_dir), compression)
    print(json.dumps({compression: {"containers": mine, "subprocess": theirs}}, indent=2))
    for key in ("accuracy_before", "accuracy_after"):
        assert abs(mine[key] - theirs[key]) <= ACCURACY_NOISE, (key, mine[key], theirs[key])
    for key in ("trained_model", "compressed_model", "exported_onnx"):
        assert abs(mine[key] - theirs[key]) <= SIZE_NOISE_MB, (key, mine[key], theirs[key])
    # The run's own report says what NVIDIA's files say.
    assert summary.accuracy_before_pruning == pytest.approx(mine["accuracy_before"], abs=1e-6)
    assert summary.accuracy_after_pruning == pytest.approx(mine["accuracy_after"], abs=1e-6)
    for key in ("trained_model", "compressed_model", "exported_onnx"):
        assert summary.model_sizes_mb[key] == pytest.approx(mine[key], abs=1e-3), key
    # quantize: torchao's weight-only int8 of the Linear layers; distill: the student's weights
    # alone (the trained checkpoint also holds the training state). Both are smaller.
    assert mine["compressed_model"] < mine["trained_model"]


def test_each_step_ran_in_its_image_as_uid_1000(runs):
    _, _, summary, out = runs
    package = load_package(out / "pipeline.local.yaml")[0]
    executors = package["deploymentSpec"]["executors"]
    components = package["components"]
    for task, spec in package["root"]["dag"]["tasks"].items():
        label = components[spec["componentRef"]["name"]]["executorLabel"]
        kind = "deploy" if task in pyt.DEPLOY_TASKS else pyt.STEP_KINDS[task]
        assert executors[label]["container"]["image"] == image(IMAGES[kind]), task
    experiment = Path(summary.experiment_dir)
    written = {
        "validate-inputs (tools)": experiment / "specs" / "train.yaml",
        "train (tao-pyt-step)": step_results(experiment, "train")
        / "train"
        / "classifier_model_latest.pth",
        "gen-trt-engine (tao-pyt-deploy-step)": step_results(experiment, "gen_trt_engine")
        / "gen_trt_engine"
        / "status.json",
    }
    for step, path in written.items():
        assert path.stat().st_uid == 1000, f"{step} wrote {path} as uid {path.stat().st_uid}"
