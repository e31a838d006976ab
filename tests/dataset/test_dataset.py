"""tao_kfp.dataset: the one 70/10/20 split, digits, VOC conversion, the CLI."""

from __future__ import annotations

import pytest

from helpers.datasets import write_voc
from tao_kfp import dataset
from tao_kfp.cli import main


@pytest.mark.parametrize("n, expected", [(10, (7, 1, 2)), (1797, (1257, 180, 360)), (3, (2, 0, 1))])
def test_split_counts_use_the_notebook_cut_points(n, expected):
    assert dataset.split_counts(n) == expected
    assert sum(expected) == n


def test_split_is_seeded_and_independent_of_input_order():
    items = [f"img{i}" for i in range(50)]
    first = dataset.split_items(items, seed=7)
    assert first == dataset.split_items(list(reversed(items)), seed=7)
    assert first != dataset.split_items(items, seed=8)
    assert [len(first[s]) for s in dataset.SPLITS] == list(dataset.split_counts(50))
    assert sorted(sum(first.values(), [])) == sorted(items)


def test_voc_conversion_matches_the_notebook_rule(tmp_path):
    voc = write_voc(tmp_path / "VOC2012")
    out = dataset.convert_voc(voc, tmp_path / "split", seed=1)
    layout = dataset.scan_class_folders(out)
    for cls in ("cat", "dog"):
        assert [len(layout[s][cls]) for s in dataset.SPLITS] == [7, 1, 2]
    assert dataset.is_complete(out)
    # An image marked 1 for both classes is in both class folders.
    names = {p.name for s in dataset.SPLITS for p in layout[s]["cat"]}
    names &= {p.name for s in dataset.SPLITS for p in layout[s]["dog"]}
    assert len(names) == 8


def test_voc_without_lists_says_where_to_point(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(ValueError, match="VOC2012 folder"):
        dataset.convert_voc(tmp_path, tmp_path / "out")


def test_prepare_data_digits_cli(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["prepare-data", "digits", "--out", str(tmp_path / "d"), "--size", "16"]) == 0
    layout = dataset.scan_class_folders(tmp_path / "d")
    assert sorted(layout["train"]) == [str(d) for d in range(10)]
    assert sum(len(v) for v in layout["test"].values()) > 300
    from PIL import Image

    with Image.open(layout["val"]["3"][0]) as image:
        assert image.size == (16, 16) and image.mode == "RGB"
    assert "train:" in capsys.readouterr().out


def test_prepare_data_voc_cli(tmp_path):
    voc = write_voc(tmp_path / "VOC2012")
    assert main(["prepare-data", "voc", "--voc-root", str(voc), "--out", str(tmp_path / "o")]) == 0
    assert dataset.is_complete(tmp_path / "o")
