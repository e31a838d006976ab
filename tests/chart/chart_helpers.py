"""Render helpers for the chart tests: `helm template` under Helm 3 and 4, parsed once a session.

The pinned helm binaries come from `make tools` (env HELM3/HELM4, exported by the Makefile).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CI_DIR = REPO / "ci"
SCENARIOS = sorted(path.stem for path in CI_DIR.glob("*-values.yaml"))
RELEASE = "rel"
# Standalone KFP runs pipeline pods in its own namespace, so the chart installs there (see
# templates/_validate.tpl); each ci/ file names its namespace in a `# helm-namespace:` line.
NAMESPACE = "kubeflow"
# Files other teammates' tools write into the chart; tests use placeholders until they exist.
GENERATED_FILES = {
    "files/pipelines/tao-classification.yaml": (
        "# PIPELINE DEFINITION\n# Name: tao-classification\n"
        "pipelineInfo:\n  name: tao-classification\nschemaVersion: 2.1.0\n"
    ),
    "files/pipelines/tao-classification-pyt.yaml": (
        "# PIPELINE DEFINITION\n# Name: tao-classification-pyt\n"
        "pipelineInfo:\n  name: tao-classification-pyt\nschemaVersion: 2.1.0\n"
    ),
    "files/specs/classification_spec.cfg": 'model_config {\n  arch: "resnet"\n  n_layers: 18\n}\n',
}
CHART_ITEMS = ("Chart.yaml", "values.yaml", "values.schema.json", ".helmignore", "README.md")
CHART_DIRS = ("templates", "files", "charts", "ci")


@dataclass(frozen=True)
class Helm:
    """A pinned helm binary."""

    name: str
    path: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.path, *args], capture_output=True, text=True, check=check, timeout=120
        )


def kube_version_bounds() -> Tuple[str, str]:
    """Oldest and newest Kubernetes allowed by Chart.yaml kubeVersion (">=A.B.0-0 <C.D.0-0")."""
    import re

    spec = yaml.safe_load((REPO / "Chart.yaml").read_text())["kubeVersion"]
    low = re.search(r">=\s*(\d+)\.(\d+)", spec)
    high = re.search(r"<\s*(\d+)\.(\d+)", spec)
    assert low and high, f"Chart.yaml kubeVersion {spec!r} must look like '>=1.X.0-0 <1.Y.0-0'"
    return f"{low[1]}.{low[2]}.0", f"{high[1]}.{int(high[2]) - 1}.0"


def helm_from_env(variable: str) -> Helm:
    """The helm binary named by $HELM3/$HELM4, or a skip saying how to get it."""
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"${variable} is not set: run the chart tests via `make test` (make tools)")
    if not Path(path).is_file():
        pytest.skip(f"${variable}={path} does not exist: run `make tools`")
    return Helm(variable.lower(), path)


@pytest.fixture(scope="session", params=["HELM3", "HELM4"])
def helm(request) -> Helm:
    """Each test using it runs under Helm 3 and under Helm 4."""
    return helm_from_env(request.param)


@pytest.fixture(scope="session")
def helm4() -> Helm:
    """For checks done once (the renders of both versions are compared in test_render)."""
    return helm_from_env("HELM4")


def copy_chart(dest: Path, *, skip: Sequence[str] = ()) -> Path:
    """Copies the chart's files to dest, adding placeholders for generated files not written yet."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in CHART_ITEMS:
        if (REPO / item).exists():
            shutil.copy2(REPO / item, dest / item)
    for folder in CHART_DIRS:
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, dest / folder)
    for relative, placeholder in GENERATED_FILES.items():
        target = dest / relative
        if relative in skip:
            target.unlink(missing_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(placeholder)
    return dest


@pytest.fixture(scope="session")
def chart_dir(tmp_path_factory) -> Path:
    """The chart to render: the repository itself once every generated file exists, else a copy."""
    if all((REPO / relative).is_file() for relative in GENERATED_FILES):
        return REPO
    return copy_chart(tmp_path_factory.mktemp("chart") / "tao-kfp")


def namespace_of(values_file: Path) -> str:
    """A ci/ scenario's namespace: its `# helm-namespace:` line (make lint reads it too)."""
    for line in Path(values_file).read_text().splitlines():
        if line.startswith("# helm-namespace:"):
            return line.split(":", 1)[1].strip()
    return NAMESPACE


def template_args(
    chart: Path,
    values: Sequence[Path] = (),
    sets: Optional[Dict[str, str]] = None,
    kube_version: Optional[str] = None,
    namespace: Optional[str] = None,
) -> List[str]:
    namespace = namespace or (namespace_of(values[0]) if values else NAMESPACE)
    args = ["template", RELEASE, str(chart), "--namespace", namespace]
    args += ["--kube-version", kube_version or kube_version_bounds()[1]]
    for path in values:
        args += ["-f", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def parse_docs(text: str) -> List[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


class Renderer:
    """Renders scenarios once per (helm, scenario, kube version) and keeps the result."""

    def __init__(self, chart: Path):
        self.chart = chart
        self._cache: Dict[tuple, Tuple[str, List[dict]]] = {}

    def text(self, helm: Helm, scenario: str, kube_version: Optional[str] = None) -> str:
        return self._render(helm, scenario, kube_version)[0]

    def docs(self, helm: Helm, scenario: str, kube_version: Optional[str] = None) -> List[dict]:
        return self._render(helm, scenario, kube_version)[1]

    def _render(self, helm: Helm, scenario: str, kube_version: Optional[str]):
        key = (helm.path, scenario, kube_version)
        if key not in self._cache:
            values = [CI_DIR / f"{scenario}.yaml"]
            result = helm.run(*template_args(self.chart, values, kube_version=kube_version))
            self._cache[key] = (result.stdout, parse_docs(result.stdout))
        return self._cache[key]


@pytest.fixture(scope="session")
def renderer(chart_dir) -> Renderer:
    return Renderer(chart_dir)


def find(docs: List[dict], kind: str, name: Optional[str] = None) -> List[dict]:
    """Objects of a kind, optionally with an exact name."""
    return [
        doc
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(docs: List[dict], kind: str, name: str) -> dict:
    found = find(docs, kind, name)
    names = [f"{d['kind']}/{d['metadata']['name']}" for d in docs]
    assert len(found) == 1, f"expected one {kind}/{name}, rendered: {names}"
    return found[0]


def pod_specs(docs: List[dict]) -> List[Tuple[str, dict, dict]]:
    """(name, pod metadata, pod spec) of every Job template and Pod."""
    pods = []
    for doc in docs:
        if doc["kind"] == "Job":
            template = doc["spec"]["template"]
            pods.append((doc["metadata"]["name"], template.get("metadata", {}), template["spec"]))
        elif doc["kind"] == "Pod":
            pods.append((doc["metadata"]["name"], doc["metadata"], doc["spec"]))
    return pods


def resolved_schema() -> dict:
    """values.schema.json with each `$ref` to `definitions` inlined (sibling keys kept)."""
    import json

    schema = json.loads((REPO / "values.schema.json").read_text())
    definitions = schema.pop("definitions", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = definitions[node["$ref"].rsplit("/", 1)[-1]]
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return inline({**target, **rest})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)
