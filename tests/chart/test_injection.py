"""No value can inject YAML: every string value, set to a newline-and-key payload, is refused or
reaches the manifest as a string (quoted or through toYaml), leaving the object set unchanged.

The old templates wrote workspace.nfs.path and kfp.tokenAudience unquoted, so a newline there
added fields (for example a hostPath volume) to the rendered objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import yaml
from chart_helpers import CI_DIR, REPO, parse_docs, template_args

PAYLOAD = (
    "x\ninjected: true\nhostPath:\n  path: /\n---\n"
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: injected"
)
BASE = CI_DIR / "01-default-values.yaml"
# String values inside maps and lists that values.yaml leaves empty by default.
EXTRA_PATHS = [
    ("commonLabels", "team"),
    ("commonAnnotations", "owner"),
    ("workspace", "claimAnnotations", "note"),
    ("gpu", "nodeSelector", "pool"),
    ("specs", "overrides", "train_config.n_epochs"),
]


def string_paths(node: Any, path: Tuple = ()) -> Iterator[Tuple]:
    """Paths of every string leaf of values.yaml; a list of strings counts as one path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_paths(value, path + (key,))
    elif isinstance(node, list):
        if node and all(isinstance(item, str) for item in node):
            yield path + ("[]",)
        for index, item in enumerate(node):
            if isinstance(item, dict):
                yield from string_paths(item, path + (index,))
    elif isinstance(node, str) or node is None:
        yield path


DEFAULTS = yaml.safe_load((REPO / "values.yaml").read_text())
PATHS: List[Tuple] = sorted(set(string_paths(DEFAULTS)) | set(EXTRA_PATHS), key=str)


def values_with(path: Tuple, value: str) -> dict:
    """A values override setting `path` to `value` (lists of dicts copied from the defaults)."""
    if path[-1] == "[]":
        return values_with(path[:-1], [value])
    root: dict = {}
    node: Any = root
    source: Any = DEFAULTS
    for position, key in enumerate(path[:-1]):
        following = path[position + 1]
        source = source[key] if isinstance(source, (dict, list)) and _has(source, key) else None
        if isinstance(following, int):
            node[key] = [dict(item) for item in source]
            node = node[key]
        else:
            node = node[key] if isinstance(node, list) else node.setdefault(key, {})
    node[path[-1]] = value
    return root


def _has(container: Any, key: Any) -> bool:
    return key in container if isinstance(container, dict) else 0 <= key < len(container)


def object_set(text: str) -> set:
    return {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in parse_docs(text)
    }


def keys_of(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from keys_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from keys_of(item)


@pytest.fixture(scope="module")
def baseline(helm, chart_dir) -> set:
    return object_set(helm.run(*template_args(chart_dir, [BASE])).stdout)


def test_every_string_value_is_covered():
    assert ("workspace", "nfs", "path") in PATHS
    assert ("kfp", "tokenAudience") in PATHS
    assert len(PATHS) >= 40


@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, p)) for p in PATHS])
def test_newline_payload_never_adds_objects_or_fields(helm, chart_dir, baseline, path, tmp_path):
    override: Path = tmp_path / "payload.yaml"
    override.write_text(yaml.safe_dump(values_with(path, PAYLOAD)))
    result = helm.run(*template_args(chart_dir, [BASE, override]), check=False)
    if result.returncode != 0:
        # Refused at install time, by the schema or templates/_validate.tpl; a YAML parse error
        # would mean the payload reached the manifest unquoted.
        refusals = (
            "values don't meet the specifications of the schema",
            "invalid values for chart",
        )
        assert any(refusal in result.stderr for refusal in refusals), result.stderr
        return
    docs = parse_docs(result.stdout)
    assert object_set(result.stdout) == baseline, f"{path} changed the object set"
    for doc in docs:
        keys = set(keys_of(doc))
        assert "injected" not in keys and "hostPath" not in keys, f"{path} added fields"
