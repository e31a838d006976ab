"""NVIDIA's TAO PyTorch code in containers (`make e2e`): the images/tao-pyt images.

``tao-pyt`` (nvidia-tao-pytorch 7.3.0) runs classification_pyt train -> evaluate -> export on a
3-class, 32 px dataset for 1 epoch, with the specs ``tao_kfp.routes.pyt`` writes, as a
non-root user with a read-only root file system and no network, like a chart pod. The CPU
shim acts only under ``TAO_KFP_CPU_SHIM=1``: without it NVIDIA's train fails asking for a GPU.
``tao-pyt-deploy`` (nvidia-tao-deploy 7.3.0) then runs classification_pyt gen_trt_engine on
the ONNX model export wrote, up to the first TensorRT call (``engine/builder.py:100``, the
stand-in's stop). Our readers parse the files NVIDIA's code wrote.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import onnx
import pytest
from e2e_helpers import image

from helpers.nvidia_data import CLASSES, IMG_SIZE, SPLITS, make_dataset, write_spec
from tao_kfp.routes import pyt

pytestmark = pytest.mark.e2e

PASS = "Execution status: PASS"
STOP = "TensorRTStandInReached: tensorrt.init_libnvinfer_plugins() called"


def podman_run(
    name: str, args: Sequence[str], work: Path, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    """Runs ``args`` in image ``name`` with ``work`` mounted at the same path, as uid 1000."""
    command = ["podman", "run", "--rm", "--network", "none", "--user", "1000:1000"]
    command += ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    command += ["-v", f"{work}:{work}", "--workdir", str(work)]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    return subprocess.run(
        [*command, image(name), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
    )


@pytest.fixture(scope="module")
def route(tmp_path_factory):
    """train -> evaluate -> export in tao-pyt, then gen_trt_engine in tao-pyt-deploy."""
    work = tmp_path_factory.mktemp("tao-pyt")
    data = make_dataset(work / "data")
    # The containers run as uid 1000, and the workspace is theirs, as the claim is a pod's.
    # The dataset folder too: NVIDIA's dataset writes dataset.root_dir/classes.txt when it is
    # missing (nvidia_tao_pytorch cv/classification_pyt/dataloader/dataset.py:58-70).
    for path in (work, *work.rglob("*")):
        path.chmod(0o777 if path.is_dir() else 0o666)
    results = work / "results"
    spec = pyt.training_spec(
        results_dir=results,
        dataset_dir=data,
        num_classes=len(CLASSES),
        img_size=IMG_SIZE,
        batch_size=4,
        epochs=1,
        cpu=True,
    )
    spec_file = write_spec(work / "spec.yaml", spec)
    onnx_file = spec["export"]["onnx_file"]
    deploy_file = write_spec(
        work / "deploy.yaml",
        pyt.deploy_spec(
            results_dir=results,
            onnx_file=onnx_file,
            engine_file=results / "model.engine",
            num_classes=len(CLASSES),
            img_size=IMG_SIZE,
        ),
    )
    ran = {}
    shim = {"TAO_KFP_CPU_SHIM": "1"}
    for action in ("train", "evaluate", "export"):
        started = time.monotonic()
        ran[action] = (
            podman_run("tao-pyt", pyt.command(action, spec_file), work, shim),
            time.monotonic() - started,
        )
        print(f"tao-pyt classification_pyt {action}: {ran[action][1]:.1f} s")
        if ran[action][0].returncode != 0:
            return work, results, ran
    started = time.monotonic()
    ran["gen_trt_engine"] = (
        podman_run(
            "tao-pyt-deploy",
            pyt.command("gen_trt_engine", deploy_file, deploy=True),
            work,
            {"TAO_KFP_STAND_IN_REPORT": str(work / "stand-in-report.json")},
        ),
        time.monotonic() - started,
    )
    print(f"tao-pyt-deploy gen_trt_engine: {ran['gen_trt_engine'][1]:.1f} s")
    return work, results, ran


@pytest.mark.parametrize("action", ["train", "evaluate", "export"])
def test_nvidia_classification_pyt_passes_in_the_image(route, action):
    _, _, ran = route
    assert action in ran, f"{action} did not run: an earlier step failed"
    process, _ = ran[action]
    assert process.returncode == 0 and PASS in process.stdout, process.stdout[-3000:]


def test_our_readers_parse_what_nvidia_wrote_in_the_container(route):
    work, results, _ = route
    assert (work / "data" / "classes.txt").read_text().split() == sorted(CLASSES)
    assert (results / "train" / "classifier_model_latest.pth").is_file()
    status = pyt.read_status(results, "evaluate")
    predictions = pyt.read_results_csv(results / "evaluate" / "result.csv")
    assert len(predictions) == SPLITS["val"] * len(CLASSES)
    assert status.kpi["val_acc_1"] == pytest.approx(pyt.accuracy(predictions), abs=1e-6)
    model = onnx.load(str(results / "export" / "model.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, IMG_SIZE, IMG_SIZE]


def test_gen_trt_engine_runs_to_the_first_tensorrt_call_in_the_deploy_image(route):
    work, results, ran = route
    assert "gen_trt_engine" in ran, "an earlier step failed"
    process, _ = ran["gen_trt_engine"]
    assert process.returncode != 0
    assert STOP in process.stdout, process.stdout[-3000:]
    # NVIDIA's script read the ONNX model NVIDIA's export wrote in the other image.
    assert "No QDQ quantization operators found in ONNX model." in process.stdout
    assert pyt.read_status(results, "gen_trt_engine").entries[0]["status"] == "STARTED"
    report = json.loads((work / "stand-in-report.json").read_text())
    innermost = report["frames"][0]
    assert report["call"] == "tensorrt.init_libnvinfer_plugins"
    assert (innermost["file"], innermost["line"]) == ("nvidia_tao_deploy/engine/builder.py", 100)
    assert not (results / "model.engine").exists()


def test_the_cpu_shim_is_off_without_its_variable(route):
    work, results, _ = route
    spec = pyt.training_spec(
        results_dir=work / "no-shim",
        dataset_dir=work / "data",
        num_classes=len(CLASSES),
        img_size=IMG_SIZE,
        cpu=True,
    )
    spec_file = write_spec(work / "no-shim.yaml", spec)
    process = podman_run("tao-pyt", pyt.command("train", spec_file), work)
    # Lightning's error for TAO's accelerator='gpu' (core/initialize_experiments.py:117).
    assert process.returncode != 0
    assert "No supported gpu backend found!" in process.stdout, process.stdout[-3000:]
