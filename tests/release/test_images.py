"""Checks of images/ that need no container engine.

The Dockerfiles are read with dockerfile-parse (a real parser: line continuations, ARG
substitution in FROM, multi-stage). Checked: bases pinned by tag, a non-root numeric USER,
the version coming only from Chart.yaml (VERSION build arg, passed by hack/build-images.sh),
TAO's own Python left alone in tao-step, and every image the pipeline, the environment config
defaults and the rendered chart reference being either built here with the chart's version or
a pinned upstream image. Building the images needs docker or podman: `make images`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tao_kfp.environment import EnvironmentConfig

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
BUILT = sorted(path.parent.name for path in IMAGES.glob("*/Dockerfile"))
CHART = yaml.safe_load((ROOT / "Chart.yaml").read_text())
VERSION = str(CHART["appVersion"])
PIPELINE = ROOT / "files" / "pipelines" / "tao-classification.yaml"


def _parse(name: str, **build_args: str) -> DockerfileParser:
    return DockerfileParser(path=str(IMAGES / name / "Dockerfile"), build_args=build_args or None)


def _instructions(name: str, instruction: str) -> list[str]:
    return [i["value"] for i in _parse(name).structure if i["instruction"] == instruction]


def split_ref(ref: str) -> Tuple[str, Optional[str], Optional[str]]:
    """Splits an image reference into (repository, tag, digest); a port is not a tag."""
    repository, _, digest = ref.partition("@")
    last = repository.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        repository, tag = repository.rsplit(":", 1)
    return repository, tag, digest or None


def image_problem(ref: str) -> Optional[str]:
    """Why ``ref`` is not acceptable (None if it is): ours with the chart version, or pinned."""
    repository, tag, digest = split_ref(ref)
    name = repository.rsplit("/", 1)[-1]
    if name in BUILT:
        if digest or tag == VERSION:
            return None
        return f"{ref}: built from images/{name}/ but tagged {tag!r}, not appVersion {VERSION}"
    if digest or (tag and tag != "latest"):
        return None
    return f"{ref}: upstream image not pinned (no tag, or `latest`)"


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        (f"localhost:5000/tao-kfp/tools:{VERSION}", True),
        ("localhost:5000/tao-kfp/tools:0.0.1", False),
        ("localhost:5000/tao-kfp/tao-step@sha256:" + "a" * 64, True),
        ("python:3.11.13-slim-bookworm", True),
        ("localhost:5000/busybox", False),
        ("busybox:latest", False),
    ],
    ids=[
        "ours-with-chart-version",
        "ours-with-other-tag",
        "ours-by-digest",
        "upstream-pinned",
        "upstream-untagged-with-registry-port",
        "upstream-latest",
    ],
)
def test_image_rule(ref, ok):
    assert (image_problem(ref) is None) is ok


def test_both_images_exist():
    assert BUILT == ["tao-step", "tools"]


@pytest.mark.parametrize("name", BUILT)
def test_base_images_are_pinned(name):
    parser = _parse(name)
    stages = {
        m.group(1)
        for m in (re.search(r"\bAS\s+(\S+)", v, re.I) for v in _instructions(name, "FROM"))
        if m
    }
    external = [ref for ref in parser.parent_images if ref not in stages]
    assert external, f"images/{name}/Dockerfile has no base image"
    for ref in external:
        _, tag, digest = split_ref(ref)
        assert "$" not in ref, f"images/{name}: base {ref!r} has an ARG without default"
        assert digest or (tag and tag != "latest"), f"images/{name}: base {ref!r} is not pinned"


@pytest.mark.parametrize("name", BUILT)
def test_runs_as_non_root_numeric_user(name):
    users = _instructions(name, "USER")
    assert users, f"images/{name}/Dockerfile never sets USER (runs as root)"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"images/{name}: final USER {users[-1]!r}"


def test_tools_user_is_the_workspace_uid():
    uid, gid = _instructions("tools", "USER")[-1].split(":")
    workspace = EnvironmentConfig().workspace
    values = yaml.safe_load((ROOT / "values.yaml").read_text())["workspace"]
    assert int(uid) == workspace.run_as_user == values["uid"]
    assert int(gid) == workspace.run_as_group == values["gid"]


@pytest.mark.parametrize("name", BUILT)
def test_version_only_from_build_arg(name):
    # ARG VERSION has no default: a stale default could label an image with a wrong version.
    version_args = [v for v in _instructions(name, "ARG") if v.split("=")[0] == "VERSION"]
    assert version_args and set(version_args) == {"VERSION"}, version_args
    labels = _parse(name, VERSION=VERSION).labels
    assert labels["org.opencontainers.image.version"] == VERSION
    for key in ("title", "revision", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"images/{name}: no {key} label"


def test_build_script_tags_and_passes_the_chart_version():
    result = subprocess.run(
        ["hack/build-images.sh", "build", "registry.example/team", VERSION],
        cwd=ROOT,
        env={**os.environ, "DRY_RUN": "1", "CONTAINER_ENGINE": "docker"},
        capture_output=True,
        text=True,
        check=True,
    )
    builds = [line for line in result.stdout.splitlines() if line.startswith("+ docker build")]
    assert len(builds) == len(BUILT), result.stdout
    for name, line in zip(BUILT, builds):
        assert f"--file images/{name}/Dockerfile" in line
        assert f"--tag registry.example/team/{name}:{VERSION}" in line
        assert f"--build-arg VERSION={VERSION}" in line
    other = subprocess.run(
        ["hack/build-images.sh", "build", "registry.example/team", "9.9.9"],
        cwd=ROOT,
        env={**os.environ, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert other.returncode != 0 and "appVersion" in other.stderr


def test_step_python_matches_tools_python():
    tools_base = _parse("tools").baseimage
    tools_python = re.match(r"python:(\d+\.\d+\.\d+)-", tools_base)
    assert tools_python, f"tools base {tools_base!r} is not a python:X.Y.Z-* image"
    step_args = dict(v.partition("=")[::2] for v in _instructions("tao-step", "ARG"))
    step_python = step_args.get("STEP_PYTHON_VERSION")
    # One Python for every step: a package that works in the CPU steps works in the GPU steps.
    assert step_python == tools_python.group(1)
    assert tuple(int(p) for p in step_python.split(".")[:2]) >= (3, 9)


def test_tao_step_keeps_tao_python_and_commands():
    parser = _parse("tao-step")
    assert parser.args["TAO_IMAGE"].startswith("nvcr.io/nvidia/tao/tao-toolkit-tf:v3.")
    assert parser.args["TAO_COMMAND"] == "classification"
    path = parser.envs["PATH"]
    # Only the wrapper folder goes first; the venv's bin (python, pip) must not shadow TAO's.
    assert path.startswith("/opt/tao-kfp/bin:"), path
    assert "/opt/tao-kfp/venv/bin" not in path
    wrappers = IMAGES / "tao-step" / "bin"
    assert sorted(p.name for p in wrappers.iterdir()) == ["python3", "tao-kfp"]
    for wrapper in wrappers.iterdir():
        assert os.access(wrapper, os.X_OK), f"{wrapper} is not executable"
        assert "/opt/tao-kfp/venv/bin/python3 -E" in wrapper.read_text()


def _allowed_by_ignore_file(name: str, source: str) -> bool:
    """True when images/<name>/Dockerfile.dockerignore lets ``source`` into the context."""
    allowed = False
    for line in (IMAGES / name / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(source.rstrip("/"), pattern) or source.startswith(pattern + "/"):
            allowed = negate
    return allowed


@pytest.mark.parametrize("name", BUILT)
def test_ignore_file_admits_every_copied_path(name):
    for value in _instructions(name, "COPY"):
        if value.startswith("--from="):
            continue
        *sources, _destination = value.split()
        for source in sources:
            assert (ROOT / source).exists(), f"images/{name}: COPY source {source} missing"
            assert _allowed_by_ignore_file(name, source), (
                f"images/{name}/Dockerfile.dockerignore keeps {source} out of the context"
            )


# ---- images referenced by the pipeline, the environment config and the chart ----


def _walk_images(node) -> Iterator[str]:
    """Image references in parsed YAML: `image:` strings and `images:` maps (env config)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            elif key == "images" and isinstance(value, dict):
                yield from (v for k, v in value.items() if k != "pullPolicy" and isinstance(v, str))
            else:
                yield from _walk_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_images(item)


def _pipeline_docs() -> list:
    if not PIPELINE.is_file():
        pytest.skip(f"{PIPELINE.relative_to(ROOT)} not compiled yet (make compile)")
    return list(yaml.safe_load_all(PIPELINE.read_text()))


def test_pipeline_images_are_ours_with_the_chart_version():
    refs = set(_walk_images(_pipeline_docs()))
    assert refs, "the compiled pipeline references no image"
    assert [p for p in map(image_problem, sorted(refs)) if p] == []
    assert {split_ref(ref)[0].rsplit("/", 1)[-1] for ref in refs} <= set(BUILT)


def test_pipeline_installs_nothing_at_run_time():
    # Air-gapped clusters: the images carry kfp and the package; a step must not pip install.
    offenders = []
    for doc in _pipeline_docs():
        for name, executor in (doc.get("deploymentSpec", {}).get("executors", {})).items():
            container = executor.get("container", {})
            text = " ".join(container.get("command", []) + container.get("args", []))
            if "pip install" in text:
                offenders.append(name)
    assert offenders == [], f"executors that pip install at run time: {offenders}"


def test_environment_default_images_are_ours_with_the_chart_version():
    images = EnvironmentConfig().images
    for ref in (images.tao, images.tools):
        assert image_problem(ref) is None, image_problem(ref)
        assert split_ref(ref)[1] == VERSION


def _chart_scenarios() -> list[Path]:
    return sorted((ROOT / "ci").glob("*.yaml")) + [ROOT / "hack" / "kind-values.yaml"]


@pytest.mark.parametrize("values", _chart_scenarios(), ids=lambda p: p.name)
def test_chart_images_are_built_here_or_pinned(values):
    helm = os.environ.get("HELM3")
    if not helm:
        pytest.skip("HELM3 is not set (make exports the pinned helm; or HELM3=/path/to/helm)")
    # The chart installs only where KFP runs pipeline pods: each file names that namespace.
    namespace = next(
        (
            line.split(":", 1)[1].strip()
            for line in values.read_text().splitlines()
            if line.startswith("# helm-namespace:")
        ),
        "kubeflow",
    )
    rendered = subprocess.run(
        [helm, "template", "release", str(ROOT), "--values", str(values), "-n", namespace],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    refs = set()
    for doc in yaml.safe_load_all(rendered.stdout):
        if not doc:
            continue
        refs |= set(_walk_images(doc))
        if doc.get("kind") == "ConfigMap":  # the environment config and the embedded pipeline
            for text in (doc.get("data") or {}).values():
                try:
                    refs |= set(_walk_images(list(yaml.safe_load_all(text))))
                except yaml.YAMLError:
                    continue  # not YAML (e.g. the protobuf-text spec)
    assert refs, f"helm template with {values.name} references no image"
    print(f"{values.name}: {sorted(refs)}")
    assert [p for p in map(image_problem, sorted(refs)) if p] == []


@pytest.mark.parametrize("name", BUILT)
def test_run_instructions_are_valid_sh(name):
    # RUN lines go to /bin/sh unchanged (Docker substitutes nothing in them): check the syntax.
    for script in _instructions(name, "RUN"):
        result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, f"images/{name}: {result.stderr}\n{script}"


def _run_tao_step_build_check(tmp_path: Path, tao_command_script: Optional[str]):
    """Runs tao-step's build-time check: the real wrappers, pointed at this test venv."""
    script = next(r for r in _instructions("tao-step", "RUN") if "TAO_COMMAND" in r)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for wrapper in (IMAGES / "tao-step" / "bin").iterdir():
        copy = bin_dir / wrapper.name
        venv_bin = str(Path(sys.executable).parent)
        copy.write_text(wrapper.read_text().replace("/opt/tao-kfp/venv/bin", venv_bin))
        copy.chmod(0o755)
    if tao_command_script is not None:
        command = bin_dir / "classification"
        command.write_text(tao_command_script)
        command.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "VERSION": VERSION,
        "TAO_COMMAND": "classification",
        "TAO_IMAGE": "nvcr.io/nvidia/tao/tao-toolkit-tf:test",
    }
    return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)


def test_tao_step_build_check_passes_with_tao_commands_intact(tmp_path):
    result = _run_tao_step_build_check(tmp_path, "#!/bin/sh\necho 'usage: classification'\n")
    assert result.returncode == 0, result.stderr
    assert "classification ->" in result.stdout


@pytest.mark.parametrize(
    ("command_script", "message"),
    [
        (None, "not on PATH"),
        ("#!/usr/bin/env python3\nprint('TAO')\n", "would run the isolated Python"),
    ],
    ids=["tao-command-missing", "tao-command-resolves-python3-through-path"],
)
def test_tao_step_build_check_fails_when_tao_is_broken(tmp_path, command_script, message):
    result = _run_tao_step_build_check(tmp_path, command_script)
    assert result.returncode != 0
    assert message in result.stderr


def test_make_images_builds_what_the_chart_pulls_by_default_tagged_with_the_chart_version():
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "images"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    registry = re.search(r"build-images\.sh build (\S+) ", dry_run.stdout).group(1)
    values = yaml.safe_load((ROOT / "values.yaml").read_text())["images"]
    environment = EnvironmentConfig().images
    # values.yaml keys: tao -> the tao-step image, tools -> the tools image.
    for key, name in (("tao", "tao-step"), ("tools", "tools")):
        assert values[key]["repository"] == f"{registry}/{name}"
        assert split_ref(getattr(environment, key))[0] == f"{registry}/{name}"
    assert re.search(
        rf"hack/build-images\.sh build \S+ {re.escape(VERSION)}$", dry_run.stdout, re.M
    ), dry_run.stdout
