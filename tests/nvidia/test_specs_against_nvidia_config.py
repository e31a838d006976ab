"""Every spec tao_kfp.routes.pyt writes is accepted by NVIDIA's own structured config.

The check is the one NVIDIA's hydra_runner does before any action runs: the YAML merged into
``OmegaConf.structured(ExperimentConfig)`` (nvidia_tao_pytorch 7.3.0
config/classification_pyt/default_config.py; nvidia_tao_deploy 7.3.0 the same path), which
rejects an unknown key or a value of the wrong type.
"""

from __future__ import annotations

import pytest

from helpers.nvidia_data import write_spec
from tao_kfp.routes import pyt

pytestmark = pytest.mark.nvidia

MERGE = """
import sys
from omegaconf import OmegaConf
from {package}.config.classification_pyt.default_config import ExperimentConfig
for path in sys.argv[1:]:
    OmegaConf.merge(OmegaConf.structured(ExperimentConfig), OmegaConf.load(path))
    print("valid", path)
"""


def _merge(env, package, files, cwd):
    return env.run(["python", "-c", MERGE.format(package=package), *files], cwd=cwd)


def _training_specs(tmp_path):
    common = dict(results_dir=tmp_path / "r", dataset_dir=tmp_path / "d", num_classes=3)
    return [
        write_spec(tmp_path / "gpu.yaml", pyt.training_spec(**common)),
        write_spec(tmp_path / "cpu.yaml", pyt.training_spec(**common, cpu=True, img_size=32)),
        write_spec(
            tmp_path / "pretrained.yaml",
            pyt.training_spec(**common, pretrained_backbone=tmp_path / "b.pth", learning_rate=0.01),
        ),
    ]


def test_training_specs_validate_against_nvidia_tao_pytorch(tmp_path, tao_pyt_env):
    files = _training_specs(tmp_path)
    process = _merge(tao_pyt_env, "nvidia_tao_pytorch", files, tmp_path)
    assert process.returncode == 0, process.stdout[-3000:]
    assert process.stdout.count("valid ") == len(files)


def test_deploy_specs_validate_against_nvidia_tao_deploy(tmp_path, tao_deploy_env):
    files = [
        write_spec(
            tmp_path / f"{data_type}.yaml",
            pyt.deploy_spec(
                results_dir=tmp_path / "r",
                onnx_file=tmp_path / "m.onnx",
                engine_file=tmp_path / "m.engine",
                num_classes=3,
                img_size=224,
                data_type=data_type,
            ),
        )
        for data_type in ("fp16", "int8")
    ]
    process = _merge(tao_deploy_env, "nvidia_tao_deploy", files, tmp_path)
    assert process.returncode == 0, process.stdout[-3000:]
    assert process.stdout.count("valid ") == len(files)


def test_the_check_rejects_a_wrong_key(tmp_path, tao_deploy_env):
    spec = pyt.deploy_spec(
        results_dir=tmp_path, onnx_file="m.onnx", engine_file="m.engine", num_classes=3, img_size=32
    )
    spec["gen_trt_engine"]["tensorrt"]["workspace"] = 1  # NVIDIA's key is workspace_size
    process = _merge(
        tao_deploy_env, "nvidia_tao_deploy", [write_spec(tmp_path / "b.yaml", spec)], tmp_path
    )
    assert process.returncode != 0
    assert "Key 'workspace' not in" in process.stdout, process.stdout[-2000:]
