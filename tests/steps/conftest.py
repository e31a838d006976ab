"""Fixtures for the step tests: a tiny class-folder workspace and a fake TAO command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers.datasets import make_class_folders, write_images, write_voc

FAKE_TAO = Path(__file__).parents[1] / "doubles" / "fake_tao.py"


@pytest.fixture
def image_writer():
    """The write_images helper (tests cannot import conftest)."""
    return write_images


@pytest.fixture
def class_folders():
    """The make_class_folders helper."""
    return make_class_folders


@pytest.fixture
def make_voc():
    """The write_voc helper."""
    return write_voc


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace with a valid 3-class dataset at datasets/tiny."""
    make_class_folders(tmp_path / "datasets" / "tiny")
    return tmp_path


class FakeTao:
    """Points TAO_ENTRYPOINT/TAO_CONVERTER at fake_tao.py and reads back its calls."""

    def __init__(self, calls: Path):
        self.calls_file = calls

    def calls(self) -> list:
        if not self.calls_file.is_file():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


@pytest.fixture
def fake_tao(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTao:
    command = f"{sys.executable} {FAKE_TAO}"
    calls = tmp_path / "fake-tao-calls.jsonl"
    monkeypatch.setenv("TAO_ENTRYPOINT", command)
    monkeypatch.setenv("TAO_CONVERTER", command)
    monkeypatch.setenv("TAO_DEPLOY_ENTRYPOINT", command)
    monkeypatch.delenv("TAO_VERSION", raising=False)
    monkeypatch.setenv("FAKE_TAO_CALLS", str(calls))
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    monkeypatch.delenv("NGC_CLI_API_KEY", raising=False)
    return FakeTao(calls)
