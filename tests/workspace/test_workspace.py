"""`tao-kfp workspace init/check` on temporary directories, through the real CLI entry point."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from tao_kfp.cli import main
from tao_kfp.workspace import LAYOUT, WorkspaceError, extract_archive


def make_tar(path: Path, members: dict, *, link: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_creates_group_writable_setgid_layout_and_is_idempotent(tmp_path, capsys):
    assert main(["workspace", "init", "--root", str(tmp_path)]) == 0
    for name in LAYOUT:
        mode = (tmp_path / name).stat().st_mode
        assert stat.S_ISDIR(mode) and mode & stat.S_ISGID and mode & stat.S_IWGRP, name
    (tmp_path / "specs" / "mine.cfg").write_text("edited by a user\n")
    assert main(["workspace", "init", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "specs" / "mine.cfg").read_text() == "edited by a user\n"


def test_init_refuses_a_missing_root(tmp_path, capsys):
    assert main(["workspace", "init", "--root", str(tmp_path / "absent")]) == 1
    assert "mount the workspace claim there" in capsys.readouterr().out


def test_dataset_is_downloaded_once_with_a_marker(tmp_path, capsys):
    archive = make_tar(tmp_path / "ds.tar.gz", {"train/cat/1.jpg": b"x", "val/dog/2.jpg": b"y"})
    root = tmp_path / "ws"
    root.mkdir()
    args = ["workspace", "init", "--root", str(root), "--dataset-url", archive.as_uri()]
    assert main([*args, "--dataset-sha256", sha256(archive)]) == 0
    assert (root / "data/train/cat/1.jpg").read_bytes() == b"x"
    marker = json.loads((root / "data/.dataset-complete").read_text())
    assert marker == {"url": archive.as_uri(), "sha256": sha256(archive)}
    assert not list((root / "data").glob(".dataset-*.part")), "the archive is not kept"
    (root / "data/train/cat/1.jpg").write_bytes(b"user change")
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (root / "data/train/cat/1.jpg").read_bytes() == b"user change"


def test_dataset_checksum_mismatch_fails_before_extracting(tmp_path, capsys):
    archive = make_tar(tmp_path / "ds.tgz", {"train/a.jpg": b"x"})
    root = tmp_path / "ws"
    root.mkdir()
    url = archive.as_uri()
    assert (
        main(
            [
                "workspace",
                "init",
                "--root",
                str(root),
                "--dataset-url",
                url,
                "--dataset-sha256",
                "0" * 64,
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert "expected " + "0" * 64 in out and "workspace.init.datasetSha256" in out
    assert not (root / "data/train").exists() and not (root / "data/.dataset-complete").exists()


def test_zip_datasets_extract(tmp_path):
    archive = tmp_path / "ds.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/cat/1.jpg", b"z")
    dest = tmp_path / "out"
    dest.mkdir()
    extract_archive(archive, dest)
    assert (dest / "train/cat/1.jpg").read_bytes() == b"z"


@pytest.mark.parametrize(
    "member",
    ["../escape.txt", "/etc/evil", "train/../../escape.txt"],
    ids=["dotdot", "absolute", "nested-dotdot"],
)
def test_tar_members_outside_the_destination_are_refused(tmp_path, member):
    archive = make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"ok", member: b"evil"})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(WorkspaceError, match="outside"):
        extract_archive(archive, dest)
    assert not (dest / "ok.txt").exists(), "nothing is written when any member is unsafe"


def test_tar_links_are_refused(tmp_path):
    archive = make_tar(tmp_path / "link.tar.gz", {"ok.txt": b"ok"}, link="passwd")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(WorkspaceError, match="link or special file"):
        extract_archive(archive, dest)


def test_zip_members_outside_the_destination_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil.txt", b"evil")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(WorkspaceError, match="outside"):
        extract_archive(archive, dest)


def test_not_an_archive_names_the_value(tmp_path):
    bogus = tmp_path / "ds.tar.gz"
    bogus.write_text("<html>login page</html>")
    with pytest.raises(WorkspaceError, match="workspace.init.datasetUrl"):
        extract_archive(bogus, tmp_path)


def test_check_passes_on_an_initialised_workspace(tmp_path, capsys):
    assert main(["workspace", "init", "--root", str(tmp_path)]) == 0
    assert main(["workspace", "check", "--root", str(tmp_path), "--allow-unmounted"]) == 0
    assert "ok:" in capsys.readouterr().out
    assert not list(tmp_path.glob(".tao-kfp-probe-*")), "the probe file is deleted"


def test_check_reports_missing_layout_with_the_fix(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    assert main(["workspace", "check", "--root", str(tmp_path), "--allow-unmounted"]) == 1
    out = capsys.readouterr().out
    assert "lacks specs, data, experiments" in out and "workspace-init" in out


def test_check_requires_a_mount_point_by_default(tmp_path, capsys):
    assert main(["workspace", "init", "--root", str(tmp_path)]) == 0
    assert main(["workspace", "check", "--root", str(tmp_path)]) == 1
    assert "is not a mount point" in capsys.readouterr().out


def test_check_reports_a_missing_root(tmp_path, capsys):
    assert main(["workspace", "check", "--root", str(tmp_path / "nope")]) == 1
    assert "the workspace claim is not mounted there" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only directories")
def test_check_reports_an_unwritable_root(tmp_path, capsys):
    assert main(["workspace", "init", "--root", str(tmp_path)]) == 0
    tmp_path.chmod(0o555)
    try:
        assert main(["workspace", "check", "--root", str(tmp_path), "--allow-unmounted"]) == 1
    finally:
        tmp_path.chmod(0o755)
    assert "is not writable by UID" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cr3tPW@data.example.com/flowers.tar.gz",
        "https://bucket.s3.amazonaws.com/f.tgz?X-Amz-Signature=s3cr3tPW",
    ],
)
def test_a_dataset_url_with_credentials_is_refused_before_anything_prints_it(tmp_path, capsys, url):
    """Issue 19: the password or signature was printed and written to the marker file."""
    from tao_kfp.workspace import init_workspace

    with pytest.raises(WorkspaceError) as caught:
        init_workspace(tmp_path, dataset_url=url)
    assert "--dataset-url carries" in str(caught.value)
    assert "s3cr3tPW" not in str(caught.value) + capsys.readouterr().out
    assert not any(tmp_path.iterdir()), "nothing is written before the check"
