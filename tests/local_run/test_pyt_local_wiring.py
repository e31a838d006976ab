"""How run-local wires the PyTorch route to NVIDIA's code (make demo-tao runs it for real)."""

from __future__ import annotations

import shlex

import pytest

from tao_kfp import local_run
from tao_kfp.local_run import LocalRunError, NvidiaEnvs


def test_version_six_needs_the_envs_of_make_tao_env(monkeypatch, tmp_path):
    monkeypatch.delenv(local_run.PYT_ENV_VARIABLE, raising=False)
    monkeypatch.delenv(local_run.DEPLOY_ENV_VARIABLE, raising=False)
    with pytest.raises(LocalRunError, match="TAO_PYT_ENV and TAO_DEPLOY_ENV .make demo-tao"):
        local_run.run_local(tmp_path / "out", tao_version="6")


def test_each_image_runs_its_envs_classification_pyt_first_on_path(tmp_path):
    envs = NvidiaEnvs(tmp_path / "pyt", tmp_path / "deploy")
    env = local_run.local_environment(tmp_path / "ws", "6", envs)
    for command, root, helpers in (
        (env.tao.entrypoint, envs.pyt, "cpu-shim"),
        (env.tao.deploy_entrypoint, envs.deploy, "deploy-stand-ins"),
    ):
        words = shlex.split(command)
        assert words[0] == "env" and words[-1] == str(root / "bin" / "classification_pyt")
        assert words[1].startswith(f"PATH={root / 'bin'}:")
        assert words[2] == f"PYTHONPATH={local_run.TAO_ENV_HELPERS / helpers}"
    assert env.tao.version == "6"


def test_the_demo_switches_the_shim_and_step_ones_nvidia_check_on(tmp_path):
    from tao_kfp.routes import pyt, pyt_steps

    environ = NvidiaEnvs(tmp_path / "pyt", tmp_path / "deploy").process_env()
    assert environ[pyt.CPU_ENV] == "1" and environ[pyt_steps.STAND_IN_ENV] == "1"
    assert environ[pyt.NVIDIA_PYTHON_ENV[False]] == str(tmp_path / "pyt" / "bin" / "python")
    # make e2e's containers get the same switches (tests/e2e/test_pyt_pipeline_in_containers.py).
    assert local_run.nvidia_cpu_env().items() <= environ.items()


def test_where_tao_deploy_stopped_is_read_from_its_traceback(monkeypatch):
    from tao_kfp.routes import pyt_steps

    log = (
        'File "/e/site-packages/nvidia_tao_deploy/cv/classification_pyt/scripts/gen_trt_engine.py",'
        " line 43, in main\n    builder = ClassificationEngineBuilder(\n"
        '  File "/e/site-packages/nvidia_tao_deploy/engine/builder.py", line 100, in __init__\n'
        '    trt.init_libnvinfer_plugins(self.trt_logger, namespace="")\n'
        '  File "/repo/tao-env/deploy-stand-ins/tensorrt/__init__.py", line 32, in __init__\n'
        "tensorrt.TensorRTStandInReached: tensorrt.init_libnvinfer_plugins() called\n"
    )
    monkeypatch.delenv(pyt_steps.STAND_IN_ENV, raising=False)
    assert pyt_steps.stand_in_stop(log) is None  # on a cluster a failed build fails the step
    monkeypatch.setenv(pyt_steps.STAND_IN_ENV, "1")
    stop = pyt_steps.stand_in_stop(log)
    assert stop.startswith("nvidia_tao_deploy/engine/builder.py:100 trt.init_libnvinfer_plugins(")
    assert pyt_steps.stand_in_stop("Killed") is None
