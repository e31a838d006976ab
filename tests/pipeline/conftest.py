"""Fixtures for the pipeline tests: a tiny class-folder workspace and a fake TAO command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

FAKE_TAO = Path(__file__).with_name("fake_tao.py")


def write_images(folder: Path, count: int, color=(200, 30, 30), size=16) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (size, size), color).save(folder / f"img_{index:03d}.png")


def make_class_folders(root: Path, classes=("cat", "dog", "fox"), counts=(6, 2, 2)) -> Path:
    """train/val/test with the given per-class counts (defaults satisfy the minimum rule)."""
    for split, count in zip(("train", "val", "test"), counts):
        for index, name in enumerate(classes):
            write_images(root / split / name, count, color=(40 * index, 100, 150))
    return root


@pytest.fixture
def image_writer():
    """The write_images helper (tests cannot import conftest)."""
    return write_images


@pytest.fixture
def class_folders():
    """The make_class_folders helper."""
    return make_class_folders


def write_voc(root: Path) -> Path:
    """A tiny VOC2012 folder: 12 JPEGs, cat = images 0-9, dog = images 2-11."""
    from PIL import Image

    (root / "JPEGImages").mkdir(parents=True)
    for index in range(12):
        Image.new("RGB", (20, 20)).save(root / "JPEGImages" / f"2008_{index:06d}.jpg")
    main_dir = root / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    for cls, members in (("cat", range(0, 10)), ("dog", range(2, 12))):
        lines = [f"2008_{i:06d} {' 1' if i in members else '-1'}" for i in range(12)]
        (main_dir / f"{cls}_trainval.txt").write_text("\n".join(lines) + "\n")
        (main_dir / f"{cls}_train.txt").write_text("ignored\n")
    return root


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
