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
from tao_kfp.routes import pyt

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
BUILT = sorted(path.parent.name for path in IMAGES.glob("*/Dockerfile"))
# Built here too: images/tao-step on TAO 5's deploy image, and images/tao-pyt's deploy target
# (hack/build-images.sh).
BUILT_FROM_OTHER_DOCKERFILES = ["tao-deploy-step", "tao-pyt-deploy"]
# What `make images` builds and the chart and pipeline pull.
SHIPPED = ["tao-step", "tools"]
# What `make images` builds by default (image name, Dockerfile folder): the images the chart's
# default route (tao.version 6: training and deploy steps) and its Jobs pull.
DEFAULT_BUILD = [("tao-step", "tao-step"), ("tao-deploy-step", "tao-step"), ("tools", "tools")]
# Local stand-ins for TAO's images (make e2e), never pushed: the CPU backend as TAO's commands,
# and NVIDIA's TAO PyTorch wheels.
LOCAL_ONLY = ["tao-pyt", "tao-standin"]
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
    if name in BUILT + BUILT_FROM_OTHER_DOCKERFILES:
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
        ("localhost:5000/tao-kfp/tao-deploy-step:0.0.1", False),
        ("localhost:5000/tao-kfp/tao-step@sha256:" + "a" * 64, True),
        ("python:3.11.13-slim-bookworm", True),
        ("localhost:5000/busybox", False),
        ("busybox:latest", False),
    ],
    ids=[
        "ours-with-chart-version",
        "ours-with-other-tag",
        "deploy-step-with-other-tag",
        "ours-by-digest",
        "upstream-pinned",
        "upstream-untagged-with-registry-port",
        "upstream-latest",
    ],
)
def test_image_rule(ref, ok):
    assert (image_problem(ref) is None) is ok


def test_both_images_exist():
    assert BUILT == sorted([*LOCAL_ONLY, *SHIPPED])


@pytest.mark.parametrize("name", BUILT)
def test_base_images_are_pinned(name):
    parser = _parse(name)
    stages = {
        m.group(1)
        for m in (re.search(r"\bAS\s+(\S+)", v, re.I) for v in _instructions(name, "FROM"))
        if m
    }
    # `scratch` is the empty default of the optional wheelhouse build context.
    external = [ref for ref in parser.parent_images if ref not in stages and ref != "scratch"]
    assert external, f"images/{name}/Dockerfile has no base image"
    for ref in external:
        _, tag, digest = split_ref(ref)
        assert "$" not in ref, f"images/{name}: base {ref!r} has an ARG without default"
        assert digest or (tag and tag != "latest"), f"images/{name}: base {ref!r} is not pinned"


@pytest.mark.parametrize("name", SHIPPED)
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
    assert len(builds) == len(DEFAULT_BUILD), result.stdout
    for (name, folder), line in zip(DEFAULT_BUILD, builds):
        assert f"--file images/{folder}/Dockerfile" in line
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


def _deploy_step_build(**env: str) -> str:
    result = subprocess.run(
        ["hack/build-images.sh", "build", "registry.example/team", VERSION, "tao-deploy-step"],
        cwd=ROOT,
        env={**os.environ, "DRY_RUN": "1", "CONTAINER_ENGINE": "docker", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    [build] = [line for line in result.stdout.splitlines() if line.startswith("+ docker build")]
    assert "--file images/tao-step/Dockerfile" in build
    assert f"--tag registry.example/team/tao-deploy-step:{VERSION}" in build
    return build


def test_deploy_step_image_is_the_step_image_on_the_default_routes_deploy_image():
    """images.taoDeploy of the default route (6): the step Dockerfile on NVIDIA's 6.x deploy
    image, checked at build time for classification_pyt (nvidia-tao-deploy's console script)."""
    build = _deploy_step_build()
    assert f"--build-arg TAO_IMAGE={pyt.DEPLOY_IMAGE}" in build
    assert f"--build-arg TAO_COMMAND={pyt.ENTRYPOINT}" in build
    values = yaml.safe_load((ROOT / "values.yaml").read_text())
    assert values["images"]["taoDeploy"]["repository"].endswith("/tao-deploy-step")


def test_deploy_step_image_on_tao5_deploy_is_an_opt_in():
    """TAO 5's engine step: tao-toolkit:5.0.0-deploy with classification_tf1 (tao_deploy 5.0
    nvidia_tao_deploy/cv/classification_tf1/scripts/gen_trt_engine.py is its subcommand)."""
    build = _deploy_step_build(
        TAO_DEPLOY_IMAGE="nvcr.io/nvidia/tao/tao-toolkit:5.0.0-deploy",
        TAO_DEPLOY_COMMAND="classification_tf1",
    )
    assert "--build-arg TAO_IMAGE=nvcr.io/nvidia/tao/tao-toolkit:5.0.0-deploy" in build
    assert "--build-arg TAO_COMMAND=classification_tf1" in build


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
    # The default base is the default route's training image (tao.version 6).
    assert parser.args["TAO_IMAGE"] == pyt.TRAINING_IMAGE
    assert parser.args["TAO_COMMAND"] == pyt.ENTRYPOINT
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


def _render_scenario(values: Path) -> subprocess.CompletedProcess:
    """`helm template` (with $HELM3; skips without it) of a scenario in the namespace its
    `# helm-namespace:` line names: the chart installs only where KFP runs the pipeline's pods."""
    helm = os.environ.get("HELM3")
    if not helm:
        pytest.skip("HELM3 is not set (make exports the pinned helm; or HELM3=/path/to/helm)")
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
    return rendered


@pytest.mark.parametrize("values", _chart_scenarios(), ids=lambda p: p.name)
def test_chart_images_are_built_here_or_pinned(values):
    rendered = _render_scenario(values)
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
        script = re.sub(r"^(--\S+\s+)+", "", script)  # RUN flags (--mount=...) are the builder's
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
    # values.yaml keys: tao -> the tao-step image, taoDeploy -> tao-deploy-step (the default
    # route's engine steps), tools -> the tools image.
    for key, field, name in (
        ("tao", "tao", "tao-step"),
        ("taoDeploy", "tao_deploy", "tao-deploy-step"),
        ("tools", "tools", "tools"),
    ):
        assert values[key]["repository"] == f"{registry}/{name}"
        assert split_ref(getattr(environment, field))[0] == f"{registry}/{name}"
    assert re.search(
        rf"hack/build-images\.sh build \S+ {re.escape(VERSION)}$", dry_run.stdout, re.M
    ), dry_run.stdout


# ---- what the container runtime executes: the pod's command + args against the image ----


def executed_argv(container: dict, entrypoint: list, cmd: list) -> list:
    """What the runtime runs for a container (Kubernetes' rule, k8s.io/api core/v1 types.go,
    Container.Command: "The container image's ENTRYPOINT is used if this is not provided";
    Args: "The container image's CMD is used if this is not provided"; a command set without
    args drops the image's CMD)."""
    command = container.get("command")
    args = container.get("args")
    if command is not None:
        return list(command) + list(args or [])
    return list(entrypoint) + list(args if args is not None else cmd)


def _json_instruction(name: str, instruction: str) -> list:
    values = _instructions(name, instruction)
    return yaml.safe_load(values[-1]) if values else []


@pytest.mark.parametrize("values", _chart_scenarios(), ids=lambda p: p.name)
def test_chart_containers_run_the_tao_kfp_cli_whatever_the_image_entrypoint(values):
    rendered = _render_scenario(values)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^tao-kfp = "tao_kfp\.cli:main"$', pyproject, re.M)
    tools_entrypoint = _json_instruction("tools", "ENTRYPOINT")
    tools_cmd = _json_instruction("tools", "CMD")
    # The tools image as built here, and one without ENTRYPOINT/CMD (e.g. a user's own build
    # FROM python with the package installed): the chart must work on both.
    for entrypoint, cmd in ((tools_entrypoint, tools_cmd), ([], ["python3"])):
        containers = 0
        for doc in yaml.safe_load_all(rendered.stdout):
            if not doc or doc.get("kind") not in ("Job", "Pod"):
                continue
            spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Job" else doc["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                containers += 1
                argv = executed_argv(container, entrypoint, cmd)
                where = f"{doc['metadata']['name']}/{container['name']}"
                assert argv[:1] == ["tao-kfp"], f"{where} would execute {argv}"
                assert argv[1] == container["args"][0], where
        assert containers, f"{values.name}: no chart container rendered"


def test_tools_image_alone_runs_the_cli(tmp_path):
    """`docker run IMAGE --help` and `docker run IMAGE upload ...` run tao-kfp, while commands
    that exist (what kfp.local's DockerRunner passes as CMD) run as given: the real entrypoint
    script under sh, with a PATH of stand-ins."""
    assert _json_instruction("tools", "ENTRYPOINT") == ["/usr/local/bin/tao-kfp-entrypoint"]
    assert _json_instruction("tools", "CMD") == ["--help"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("tao-kfp", "python3"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*"\n')
        (bin_dir / tool).chmod(0o755)
    script = IMAGES / "tools" / "entrypoint.sh"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    cases = {
        ("--help",): "tao-kfp --help",
        ("upload", "--verify-only"): "tao-kfp upload --verify-only",
        ("python3", "-m", "kfp.dsl.executor_main"): "python3 -m kfp.dsl.executor_main",
        (): "tao-kfp",
    }
    for args, expected in cases.items():
        out = subprocess.run(["sh", str(script), *args], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, (args, out.stdout, out.stderr)


def test_stand_in_installs_every_tao_command_the_backend_declares(tmp_path):
    from tao_kfp.cpu_backend.cli import SUBCOMMANDS

    subprocess.run(
        [
            sys.executable,
            str(IMAGES / "tao-standin" / "install-tao-commands.py"),
            "BACKEND",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    written = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert {"classification", "classification_tf1", "converter", "python"} <= set(written)
    for name in ("classification", "classification_tf1"):
        assert 'exec BACKEND "$@"' in written[name]
    for name in set(SUBCOMMANDS) - {
        "train",
        "evaluate",
        "prune",
        "inference",
        "export",
        "calibration_tensorfile",
    }:
        assert f'exec BACKEND {name} "$@"' in written[name], name


def test_build_options_become_secret_context_and_args():
    result = subprocess.run(
        ["hack/build-images.sh", "build", "registry.example/team", VERSION, "tools", "tao-step"],
        cwd=ROOT,
        env={
            **os.environ,
            "DRY_RUN": "1",
            "CONTAINER_ENGINE": "podman",
            "CA_BUNDLE": "/etc/ca.pem",
            "WHEELHOUSE": "/srv/wheels",
            "PIP_INDEX_URL": "https://mirror.example/simple",
            "STEP_PYTHON": "/usr/bin/python3",
            "PYTHON_IMAGE": "localhost/debian:bookworm",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    builds = [line for line in result.stdout.splitlines() if line.startswith("+ podman build")]
    assert len(builds) == 2, result.stdout
    for line in builds:
        # The CA bundle is a build secret (never a build arg or a COPY, so never in a layer).
        assert "--secret id=ca,src=/etc/ca.pem" in line and "/etc/ca.pem " not in line.replace(
            "src=/etc/ca.pem", ""
        )
        assert "--build-context wheelhouse=/srv/wheels" in line
        assert "--build-arg PIP_INDEX_URL=https://mirror.example/simple" in line
        assert "--build-arg PYTHON_IMAGE=localhost/debian:bookworm" in line
    assert "--build-arg STEP_PYTHON=/usr/bin/python3" in builds[1]
    for name in BUILT:
        dockerfile = (IMAGES / name / "Dockerfile").read_text()
        if name == "tao-pyt":  # installs from the wheelhouse only: no index, so no CA to pass
            assert dockerfile.count("--no-index") == dockerfile.count("pip install") == 2
            continue
        assert "--mount=type=secret,id=ca" in dockerfile, name
