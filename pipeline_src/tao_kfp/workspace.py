"""``tao-kfp workspace``: lay out and check the shared workspace volume.

``init`` (the chart's post-install Job) creates ``models/ specs/ data/ experiments/`` as
group-writable setgid directories, so every pod running with the workspace GID can write
them (NFS has no fsGroup chown), and optionally downloads a dataset archive into ``data/``
once, extracting it safely and leaving a completion marker. Running it again changes nothing.

``check`` (a ``helm test`` pod) says whether the workspace is mounted, writable and laid out,
and how to fix it when it is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import List, Optional

from tao_kfp import value_rules

LAYOUT = ("models", "specs", "data", "experiments")
# rwxrwsr-x: group-writable, and setgid so new files inherit the workspace group.
DIR_MODE = 0o2775
DATASET_MARKER = ".dataset-complete"
_CHUNK = 1 << 20


class WorkspaceError(RuntimeError):
    """A workspace problem, worded with its fix."""


def add_arguments(parser):
    """Registers ``workspace init`` and ``workspace check``."""
    sub = parser.add_subparsers(dest="workspace_command", required=True, metavar="ACTION")
    init = sub.add_parser("init", help="create the layout (idempotent), optionally fetch a dataset")
    init.add_argument("--root", required=True, help="workspace mount path, e.g. /workspace")
    init.add_argument("--dataset-url", help="http(s) URL of a .tar/.tar.gz/.tgz/.zip archive")
    init.add_argument("--dataset-sha256", help="expected sha256 of the archive (hex)")
    init.add_argument("--uid", type=int, help="owner of the layout (chown only when run as root)")
    init.add_argument("--gid", type=int, help="group of the layout (chown only when run as root)")
    check = sub.add_parser("check", help="check mounted, writable and laid out")
    check.add_argument("--root", required=True, help="workspace mount path, e.g. /workspace")
    check.add_argument(
        "--allow-unmounted",
        action="store_true",
        help="do not require ROOT to be a mount point (local directories)",
    )


def run(args) -> int:
    """Runs ``workspace init`` or ``workspace check``."""
    root = Path(args.root)
    if args.workspace_command == "init":
        try:
            init_workspace(
                root,
                dataset_url=args.dataset_url,
                dataset_sha256=args.dataset_sha256,
                uid=args.uid,
                gid=args.gid,
            )
        except WorkspaceError as exc:
            print(f"workspace init failed: {exc}")
            return 1
        return 0
    problems = check_workspace(root, require_mount=not args.allow_unmounted)
    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        return 1
    print(f"ok: {root} is mounted, writable and has {', '.join(LAYOUT)}")
    return 0


def init_workspace(
    root: Path,
    *,
    dataset_url: Optional[str] = None,
    dataset_sha256: Optional[str] = None,
    uid: Optional[int] = None,
    gid: Optional[int] = None,
) -> None:
    """Creates the layout under ``root`` and fetches the dataset once; safe to run again."""
    if not root.is_dir():
        raise WorkspaceError(
            f"{root} does not exist or is not a directory: mount the workspace claim there"
        )
    if dataset_sha256 and not dataset_url:
        raise WorkspaceError("--dataset-sha256 needs --dataset-url")
    # Before anything prints the URL or records it in the marker file (the chart refuses the
    # same values at install: tao_kfp.value_rules).
    problems = value_rules.dataset_url_problems(dataset_url or "", "--dataset-url")
    if problems:
        raise WorkspaceError(problems[0])
    for name in LAYOUT:
        _make_dir(root / name, uid=uid, gid=gid)
    print(f"layout ready: {', '.join(str(root / name) for name in LAYOUT)}")
    if dataset_url:
        fetch_dataset(root / "data", dataset_url, dataset_sha256)


def _make_dir(path: Path, *, uid: Optional[int], gid: Optional[int]) -> None:
    try:
        path.mkdir(exist_ok=True)
    except PermissionError as exc:
        raise WorkspaceError(
            f"cannot create {path}: {exc.strerror}. The workspace root must be writable by the"
            f" Job's UID/GID (values workspace.uid/gid); on NFS chown the export to them"
        ) from exc
    if os.geteuid() == 0 and (uid is not None or gid is not None):
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    try:
        os.chmod(path, DIR_MODE)
    except PermissionError:
        # Owned by someone else (e.g. created by hand): usable if group-writable, else say so.
        if not os.access(path, os.W_OK):
            raise WorkspaceError(
                f"{path} is not writable by UID {os.geteuid()} / GID {os.getegid()}: run"
                f" `chown -R {uid or os.geteuid()}:{gid or os.getegid()} {path}` and"
                f" `chmod 2775 {path}` on the storage"
            ) from None
        print(f"note: {path} is owned by another user; left its mode unchanged")


def fetch_dataset(data_dir: Path, url: str, sha256: Optional[str] = None) -> bool:
    """Downloads and extracts an archive into ``data_dir`` once. Returns False when already done.

    The marker file records the URL (and checksum); a different URL downloads again.
    """
    marker = data_dir / DATASET_MARKER
    wanted = {"url": url, "sha256": (sha256 or "").lower()}
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
        except ValueError:
            done = {}
        if done.get("url") == url and (not sha256 or done.get("sha256") == wanted["sha256"]):
            print(f"dataset already extracted from {url} (marker {marker}); nothing to do")
            return False
    partial = data_dir / ".dataset-download.part"
    print(f"downloading {url} -> {partial}")
    digest = _download(url, partial)
    if sha256 and digest != wanted["sha256"]:
        partial.unlink()
        raise WorkspaceError(
            f"dataset archive sha256 is {digest}, expected {sha256}: fix"
            f" workspace.init.datasetSha256 or the URL {url}"
        )
    wanted["sha256"] = digest
    staging = data_dir / ".dataset-extract.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        extract_archive(partial, staging)
        for entry in staging.iterdir():
            target = data_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            entry.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    marker.write_text(json.dumps(wanted) + "\n")
    print(f"dataset extracted into {data_dir} (sha256 {digest})")
    return True


def _download(url: str, dest: Path) -> str:
    if not url.startswith(("http://", "https://", "file://")):
        raise WorkspaceError(f"dataset URL {url!r} must be http(s)://")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise WorkspaceError(
            f"downloading {url} failed: {exc}. Check workspace.init.datasetUrl and that the"
            " cluster can reach it"
        ) from exc
    return digest.hexdigest()


def _safe_member_path(name: str, dest: Path) -> Path:
    """Resolves an archive member name inside ``dest`` or raises (absolute, ``..``)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise WorkspaceError(f"archive member {name!r} would be written outside {dest}: refused")
    target = (dest / pure).resolve()
    if target != dest.resolve() and dest.resolve() not in target.parents:
        raise WorkspaceError(f"archive member {name!r} would be written outside {dest}: refused")
    return target


def extract_archive(archive: Path, dest: Path) -> None:
    """Extracts a tar (any compression) or zip archive into ``dest``, refusing unsafe members.

    Refused: absolute paths, ``..``, links, devices and FIFOs. Only regular files and
    directories are written, with safe modes (no setuid, group-writable).
    """
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _safe_member_path(member.name, dest)
                if not (member.isfile() or member.isdir()):
                    raise WorkspaceError(
                        f"archive member {member.name!r} is a link or special file: refused"
                        " (datasets contain only files and directories)"
                    )
            for member in members:
                target = _safe_member_path(member.name, dest)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.chmod(target, 0o664)
        return
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _safe_member_path(info.filename, dest)
                mode = info.external_attr >> 16
                if mode and stat.S_ISLNK(mode):
                    raise WorkspaceError(f"archive member {info.filename!r} is a link: refused")
            for info in infos:
                target = _safe_member_path(info.filename, dest)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.chmod(target, 0o664)
        return
    raise WorkspaceError(
        f"{archive} is neither a tar nor a zip archive: workspace.init.datasetUrl must point to"
        " a .tar, .tar.gz, .tgz or .zip file"
    )


def _is_mount_point(path: Path) -> bool:
    if os.path.ismount(path):
        return True
    # Bind mounts from the same filesystem do not change st_dev; the mount table knows them.
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return False
    resolved = str(path.resolve())
    return any(
        len(fields) > 4 and fields[4] == resolved
        for fields in (line.split() for line in mountinfo.splitlines())
    )


def check_workspace(root: Path, *, require_mount: bool = True) -> List[str]:
    """Returns the problems of the workspace at ``root`` (empty when healthy), each with its fix."""
    ids = f"UID {os.geteuid()} / GID {os.getegid()}"
    if not root.is_dir():
        return [
            f"{root} does not exist: the workspace claim is not mounted there; check the pod's"
            " volumeMounts and `kubectl get pvc` (the claim must be Bound)"
        ]
    problems = []
    if require_mount and not _is_mount_point(root):
        problems.append(
            f"{root} is not a mount point: the pod writes to its own filesystem, not the claim;"
            " mount the workspace PersistentVolumeClaim at this path"
        )
    probe = root / f".tao-kfp-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"probe\n")
        if probe.read_bytes() != b"probe\n":
            problems.append(f"{root}: a probe file read back different content: check the storage")
        probe.unlink()
    except OSError as exc:
        problems.append(
            f"{root} is not writable by {ids} ({exc.strerror}): make the volume writable for"
            " workspace.uid/gid (on NFS: chown the export to them, or use all_squash with"
            " anonuid/anongid); a read-only claim (ReadOnlyMany) cannot be the workspace"
        )
    missing = [name for name in LAYOUT if not (root / name).is_dir()]
    if missing:
        problems.append(
            f"{root} lacks {', '.join(missing)}: the workspace init Job has not run or failed;"
            " read its logs (kubectl logs job/<release>-tao-kfp-workspace-init) or run"
            f" `tao-kfp workspace init --root {root}`"
        )
    unwritable = [
        name for name in LAYOUT if (root / name).is_dir() and not os.access(root / name, os.W_OK)
    ]
    if unwritable:
        problems.append(
            f"{', '.join(unwritable)} under {root} not writable by {ids}: run"
            f" `chmod -R g+w,g+s` and chgrp to workspace.gid on those directories"
        )
    return problems
