"""Step 3: the shared pretrained-model cache (marker + sha256, lock, sources)."""

from __future__ import annotations

import json
import shutil
import sys
import threading

import pytest

from tao_kfp.steps import pretrained
from tao_kfp.steps.pretrained import PretrainedError, fetch_pretrained


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "incoming" / "resnet_18.hdf5"
    path.parent.mkdir()
    path.write_bytes(b"weights" * 100)
    return path


def test_no_source_means_training_from_scratch(tmp_path):
    result = fetch_pretrained("", tmp_path / "cache")
    assert (result.model_path, result.status) == ("", "none")


def test_a_workspace_file_is_copied_in_once_then_reused(tmp_path, model_file):
    cache = tmp_path / "cache"
    first = fetch_pretrained(str(model_file), cache)
    assert first.status == "copied"
    assert open(first.model_path, "rb").read() == model_file.read_bytes()
    marker = json.loads((cache / pretrained.slug(str(model_file)) / "complete.json").read_text())
    assert marker["sha256"] == pretrained.sha256_of(first.model_path)
    second = fetch_pretrained(str(model_file), cache)
    assert (second.status, second.model_path) == ("cached", first.model_path)


def test_a_corrupted_cache_entry_is_fetched_again(tmp_path, model_file):
    cache = tmp_path / "cache"
    first = fetch_pretrained(str(model_file), cache)
    with open(first.model_path, "ab") as handle:
        handle.write(b"truncated download")
    assert fetch_pretrained(str(model_file), cache).status == "copied"


def test_an_entry_without_marker_is_not_trusted(tmp_path, model_file):
    cache = tmp_path / "cache"
    first = fetch_pretrained(str(model_file), cache)
    (cache / pretrained.slug(str(model_file)) / "complete.json").unlink()
    assert fetch_pretrained(str(model_file), cache).model_path == first.model_path


def test_concurrent_runs_fetch_once(tmp_path, model_file, monkeypatch):
    copies = []
    real_copy = shutil.copy2

    def counting_copy(src, dst):
        copies.append(src)
        return real_copy(src, dst)

    monkeypatch.setattr(pretrained.shutil, "copy2", counting_copy)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(fetch_pretrained(str(model_file), tmp_path / "c"))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(copies) == 1
    assert sorted(r.status for r in results) == ["cached", "cached", "cached", "copied"]
    assert len({r.model_path for r in results}) == 1


def test_ngc_without_ngcsdk_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ngcsdk", None)  # import fails
    with pytest.raises(PretrainedError, match="ngcsdk"):
        fetch_pretrained("nvidia/tao/pretrained_classification:resnet18", tmp_path / "cache")


def test_ngc_download_goes_through_ngcsdk(tmp_path, monkeypatch):
    """A stand-in ngcsdk records the call and writes the NGC folder layout."""
    calls = {}

    class Model:
        def download_version(self, reference, destination):
            calls["download"] = (reference, destination)
            target = f"{destination}/pretrained_classification_vresnet18"
            import os

            os.makedirs(target)
            with open(f"{target}/resnet_18.hdf5", "wb") as handle:
                handle.write(b"h5")

    class Client:
        def __init__(self):
            self.registry = type("Registry", (), {"model": Model()})()

        def configure(self, **kwargs):
            calls["configure"] = kwargs

    monkeypatch.setitem(sys.modules, "ngcsdk", type(sys)("ngcsdk"))
    sys.modules["ngcsdk"].Client = Client
    monkeypatch.setenv("NGC_CLI_API_KEY", "key-value")
    result = fetch_pretrained("nvidia/tao/pretrained_classification:resnet18", tmp_path / "c")
    assert result.status == "downloaded" and result.model_path.endswith("/resnet_18.hdf5")
    assert calls["configure"] == {"api_key": "key-value", "org_name": "nvidia", "team_name": "tao"}
    assert calls["download"][0] == "nvidia/tao/pretrained_classification:resnet18"
