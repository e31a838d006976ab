"""Step 1 and the per-class figures read exactly what TAO's Keras loader reads (issue 19, 7).

The reference is the real loader: keras_preprocessing 1.1.2's DirectoryIterator, which TAO's
flow_from_directory calls (tao_tensorflow1_backend 5.0 makenet/scripts/train.py:302,
evaluate.py:282). Its rule: every directory of the split is a class, hidden ones included
(image/directory_iterator.py:113-117); inside, os.walk(followlinks=False) and a white list of
seven extensions, case-insensitive (image/utils.py:159-182, image/iterator.py:34).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from helpers.step_params import run_params
from tao_kfp import dataset
from tao_kfp.steps.inference import flatten_labelled_folder
from tao_kfp.steps.validate import InputError, validate_inputs


def image(path: Path, color=(10, 200, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), color).save(path)
    return path


def awkward_split(split: Path) -> None:
    """Images TAO reads beyond top-level .jpg/.jpeg/.png, and files it skips."""
    cat = split / "cat"
    for name in ("a.jpg", "b.PNG", "c.bmp", "d.tif", "e.ppm", "nested/deeper/f.jpeg"):
        image(cat / name)
    image(cat / ".ipynb_checkpoints" / "g-checkpoint.png")  # hidden subfolder: read
    (cat / "notes.txt").write_text("not an image")
    outside = image(split.parent / "elsewhere" / "h.png").parent
    os.symlink(outside, cat / "linked")  # a symlinked subfolder is not followed
    image(split / "dog" / "x.jpg", (200, 10, 10))
    image(split / "dog" / "y.TIFF", (200, 10, 10))


def keras_reads(split: Path) -> dict[str, list[str]]:
    """{class: [relative file]} as keras_preprocessing's DirectoryIterator lists them."""
    from keras_preprocessing.image import DirectoryIterator

    iterator = DirectoryIterator(str(split), None, target_size=(16, 16))
    found: dict[str, list[str]] = {name: [] for name in iterator.class_indices}
    for filename in iterator.filenames:
        class_name, rest = filename.split(os.sep, 1)
        found[class_name].append(rest)
    return found


def test_scan_class_folders_lists_what_keras_lists(tmp_path):
    awkward_split(tmp_path / "train")
    image(tmp_path / "train" / ".ipynb_checkpoints" / "z.png")  # a hidden class folder
    ours = {
        name: [str(p.relative_to(tmp_path / "train" / name)) for p in images]
        for name, images in dataset.scan_class_folders(tmp_path)["train"].items()
    }
    assert ours == keras_reads(tmp_path / "train")
    assert len(ours["cat"]) == 7 and ".ipynb_checkpoints" in ours


def test_step_1_counts_subfolder_images_and_every_extension(tmp_path):
    """Each class has 2 train images only when subfolders and .bmp/.tif count, as in TAO."""
    root = tmp_path / "data" / "set"
    for split in ("train", "val", "test"):
        image(root / split / "cat" / "one.jpg")
        image(root / split / "dog" / "one.bmp", (200, 0, 0))
    image(root / "train" / "cat" / "more" / "two.png")
    image(root / "train" / "dog" / "two.TIF", (200, 0, 0))
    plan = validate_inputs(**run_params(tmp_path, dataset_path="data/set", batch_size=4))
    assert plan.dataset_dir == str(root)


def test_step_1_refuses_a_hidden_class_folder(workspace):
    image(workspace / "datasets" / "tiny" / "val" / ".ipynb_checkpoints" / "x.png")
    with pytest.raises(InputError) as error:
        validate_inputs(**run_params(workspace))
    assert "val/.ipynb_checkpoints" in str(error.value) and "extra classes" in str(error.value)


def test_per_class_figures_cover_every_image_evaluate_reads(tmp_path):
    """Inference -d reads only .jpg/.jpeg/.png: the others are given to it as PNG."""
    awkward_split(tmp_path / "test")
    labels = flatten_labelled_folder(tmp_path / "test", tmp_path / "flat")
    counts = {name: list(labels.values()).count(name) for name in ("cat", "dog")}
    assert counts == {"cat": 7, "dog": 2}
    assert counts == {name: len(files) for name, files in keras_reads(tmp_path / "test").items()}
    flat = sorted(p.name for p in (tmp_path / "flat").iterdir())
    assert all(name.lower().endswith(dataset.INFERENCE_EXTENSIONS) for name in flat)
    converted = next(p for p in (tmp_path / "flat").iterdir() if p.name.endswith("_c.png"))
    with Image.open(converted) as png, Image.open(tmp_path / "test" / "cat" / "c.bmp") as bmp:
        assert png.tobytes() == bmp.convert("RGB").tobytes()
