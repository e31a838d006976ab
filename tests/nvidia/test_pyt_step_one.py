"""Step 1 of the PyTorch route checks every spec it writes with NVIDIA's own ExperimentConfig.

routes.pyt.nvidia_config_problems runs the check NVIDIA's hydra_runner makes in the envs of
make tao-env (nvidia-tao-pytorch and nvidia-tao-deploy 7.3.0): every spec of a run, for both
compressions, is accepted; a misspelled key fails step 1 with NVIDIA's message and the key.
"""

from __future__ import annotations

import pytest

from helpers.nvidia_data import make_dataset
from helpers.pyt_runs import step_one_params
from tao_kfp.routes import pyt, pyt_steps
from tao_kfp.steps.validate import InputError

pytestmark = pytest.mark.nvidia


@pytest.fixture
def nvidia_pythons(monkeypatch, tao_pyt_env, tao_deploy_env):
    monkeypatch.setenv(pyt.NVIDIA_PYTHON_ENV[False], str(tao_pyt_env.root / "bin" / "python"))
    monkeypatch.setenv(pyt.NVIDIA_PYTHON_ENV[True], str(tao_deploy_env.root / "bin" / "python"))


def run_step_one(workspace, **changes):
    make_dataset(workspace / "data")
    values = step_one_params(
        dataset_path="data", batch_size=4, spec_overrides='{"dataset": {"img_size": 32}}'
    )
    values.update(changes)
    return pyt_steps.validate_inputs(workspace=str(workspace), **values)


@pytest.mark.parametrize("compression", pyt.COMPRESSIONS)
def test_every_spec_of_a_run_passes_nvidias_config(tmp_path, nvidia_pythons, capsys, compression):
    run_step_one(tmp_path, compression=compression)
    out = capsys.readouterr().out
    assert "6 specs checked against nvidia_tao_pytorch" in out
    assert "2 specs checked against nvidia_tao_deploy" in out


def test_a_wrong_spec_key_fails_step_one_with_nvidias_error(tmp_path, nvidia_pythons):
    with pytest.raises(InputError) as error:
        run_step_one(tmp_path, spec_overrides='{"train": {"num_epoch": 3}}')
    message = str(error.value)
    assert "key train.num_epoch" in message
    assert "Key 'num_epoch' not in 'TrainExpConfig'" in message


def test_a_wrong_value_type_fails_step_one_with_nvidias_error(tmp_path, nvidia_pythons):
    with pytest.raises(InputError, match="dataset.workers") as error:
        run_step_one(tmp_path, spec_overrides='{"dataset": {"workers": "many"}}')
    assert "Value 'many'" in str(error.value) or "many" in str(error.value)
