"""Fixtures for the CPU backend tests: a small digits dataset and one train/prune/export chain.

The expensive steps (train, prune, export) run once per session; tests assert on their files
and printed output. Images are 16x16 so a few epochs take seconds on two cores.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cpu_backend_helpers import EPOCHS, KEY, run_cli, write_digits, write_spec


@dataclass
class Chain:
    """Paths and outputs of the session's train -> prune -> retrain -> export chain."""

    root: Path
    work: Path
    outputs: dict = field(default_factory=dict)

    def spec(self, name: str = "spec.cfg", **kwargs) -> Path:
        return write_spec(self.work / name, self.root / "digits", **kwargs)


@pytest.fixture(scope="session")
def chain(tmp_path_factory) -> Chain:
    """The dataset plus a trained model (``results/``); later steps add to ``outputs``."""
    work = tmp_path_factory.mktemp("cpu_backend")
    write_digits(work / "digits")
    chain = Chain(root=work, work=work)
    results = work / "results"
    model = results / "weights" / f"resnet_{EPOCHS:03d}.tlt"
    spec = chain.spec(model=str(model))
    code, out, err = run_cli(["train", "-e", spec, "-r", results, "-k", KEY, "--gpus", "1"])
    assert code == 0, err
    chain.outputs.update(train_stdout=out, results=results, model=model, spec=spec)
    return chain


@pytest.fixture(scope="session")
def pruned(chain) -> Path:
    """The trained model pruned at the notebook's threshold (0.6)."""
    output = chain.work / "pruned" / "resnet_pruned.tlt"
    code, out, err = run_cli(
        ["prune", "-m", chain.outputs["model"], "-o", output, "-k", KEY, "-pth", "0.6"]
    )
    assert code == 0, err
    chain.outputs["prune_stdout"] = out
    return output


@pytest.fixture(scope="session")
def calibration_file(chain) -> Path:
    """A TensorFile of 3 batches from the train split."""
    output = chain.work / "export" / "calibration.tensor"
    code, _out, err = run_cli(
        ["calibration_tensorfile", "-e", chain.outputs["spec"], "-o", output, "-m", 3]
    )
    assert code == 0, err
    return output


@pytest.fixture(scope="session")
def int8_export(chain, calibration_file) -> dict:
    """export --data_type int8: the .etlt, its calibration cache and the printed output."""
    folder = calibration_file.parent
    etlt, cache = folder / "int8.etlt", folder / "cal.bin"
    code, out, err = run_cli(
        [
            "export", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
            "-o", etlt, "--data_type", "int8", "--cal_data_file", calibration_file,
            "--cal_cache_file", cache, "--batches", 3, "--batch_size", 32,
        ]
    )  # fmt: skip
    assert code == 0, err
    return {"etlt": etlt, "cache": cache, "stdout": out}


@pytest.fixture(scope="session")
def test_images(chain):
    """The test split as preprocessed float32 NCHW numpy array plus labels."""
    from tao_kfp.cpu_backend.common import load_experiment_spec
    from tao_kfp.cpu_backend.data import ImageFormat, load_image_set

    spec = load_experiment_spec(str(chain.outputs["spec"]))
    image_format = ImageFormat.from_spec(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        test_set = load_image_set(chain.root / "digits" / "test", image_format, crop="center")
    return image_format.preprocess(test_set.images).numpy(), test_set.labels.numpy()


@pytest.fixture
def cli():
    """The in-process CLI runner (tests cannot import conftest)."""
    return run_cli
