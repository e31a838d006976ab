"""Fixtures for the ``tao-kfp upload`` tests: toy packages and the KFP API test double."""

# No `from __future__ import annotations` here: kfp reads the component annotations as types.

from pathlib import Path
from typing import Iterator, Tuple

import pytest

from doubles.kfp_api import FakeKfpApi


def _compile_toy(path: Path, default_message: str) -> Path:
    """Compiles a real (tiny) KFP v2 pipeline with kfp's compiler."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def echo(message: str) -> str:
        return message

    @dsl.pipeline(name="toy-pipeline", description="test package for tao-kfp upload")
    def toy(message: str = default_message):
        echo(message=message)

    compiler.Compiler().compile(toy, str(path))
    return path


@pytest.fixture(scope="session")
def toy_packages(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """Two compiled packages that differ only in a parameter default."""
    folder = tmp_path_factory.mktemp("packages")
    return (
        _compile_toy(folder / "toy-a.yaml", "hello"),
        _compile_toy(folder / "toy-b.yaml", "goodbye"),
    )


@pytest.fixture
def kfp_api() -> Iterator[FakeKfpApi]:
    """A standalone (single-user) KFP API double, listening."""
    api = FakeKfpApi().start()
    yield api
    api.stop()


@pytest.fixture(autouse=True)
def hermetic_kfp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keeps kfp away from the real ~/.config/kfp and the token env var.

    Returns the context path kfp would use; tests assert it is never written.
    """
    from kfp.client import Client

    context = tmp_path / "home" / ".config" / "kfp" / "context.json"
    monkeypatch.setattr(Client, "_LOCAL_KFP_CONTEXT", str(context))
    monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
    return context
