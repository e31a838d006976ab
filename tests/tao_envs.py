"""Fixtures that run NVIDIA's TAO wheels (``nvidia`` marker): the envs ``make tao-env`` builds.

``tao_pyt_env`` and ``tao_deploy_env`` (session scope) give a :class:`TaoEnv` whose ``run``
starts a command with the env first on PATH (TAO's launcher starts the first ``python`` on
PATH), telemetry off, and the repo's helpers on PYTHONPATH: the CPU shim for the PyTorch env
(tao-env/cpu-shim), the tensorrt/pycuda stand-ins for the deploy env. An env that is not built
skips the test ("run make tao-env"), or fails it under ``TAO_KFP_REQUIRE_NVIDIA=1`` (make test).
Registered for every test directory by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TaoEnv:
    """A built env and the PYTHONPATH additions its commands run with."""

    root: Path
    pythonpath: Sequence[Path]
    extra_env: Dict[str, str]

    def environ(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in self.pythonpath)
        env["TELEMETRY_OPT_OUT"] = "yes"
        env.update(self.extra_env)
        return env

    def run(
        self, args: Sequence[str], cwd: Path, timeout: float = 1800, env: Optional[Dict] = None
    ) -> subprocess.CompletedProcess:
        """Runs ``args`` in ``cwd``, output captured (stdout and stderr merged)."""
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env={**self.environ(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )


def _built_env(name: str) -> Path:
    check = subprocess.run(
        [str(REPO / "hack" / "tao-env.sh"), name, "--check"],
        capture_output=True,
        text=True,
    )
    if check.returncode == 3:
        reason = f"NVIDIA's TAO {name} env is not built: run make tao-env ({check.stdout.strip()})"
        if os.environ.get("TAO_KFP_REQUIRE_NVIDIA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    assert check.returncode == 0, check.stderr
    return Path(check.stdout.strip())


@pytest.fixture(scope="session")
def tao_pyt_env() -> TaoEnv:
    """nvidia-tao-pytorch 7.3.0 with the CPU shim switched on."""
    return TaoEnv(_built_env("pyt"), [REPO / "tao-env" / "cpu-shim"], {"TAO_KFP_CPU_SHIM": "1"})


@pytest.fixture(scope="session")
def tao_deploy_env() -> TaoEnv:
    """nvidia-tao-deploy 7.3.0 with the tensorrt and pycuda stand-ins."""
    return TaoEnv(_built_env("deploy"), [REPO / "tao-env" / "deploy-stand-ins"], {})
