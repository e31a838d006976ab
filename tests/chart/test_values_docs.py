"""values.yaml, values.schema.json and the README Parameters table describe the same keys."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import REPO, resolved_schema

VALUES = yaml.safe_load((REPO / "values.yaml").read_text())
SCHEMA = resolved_schema()


def schema_keys(schema: dict, prefix: str = "") -> set:
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        keys.add(path)
        if sub.get("additionalProperties") is False:
            keys |= schema_keys(sub, f"{path}.")
    return keys


def value_keys(values: dict, schema: dict, prefix: str = "") -> set:
    keys = set()
    for name, value in values.items():
        path = f"{prefix}{name}"
        keys.add(path)
        sub = schema.get("properties", {}).get(name, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            keys |= value_keys(value, sub, f"{path}.")
    return keys


def test_schema_has_no_key_that_values_yaml_lacks():
    stale = schema_keys(SCHEMA) - value_keys(VALUES, SCHEMA) - {"global"}
    assert not stale, f"values.schema.json describes keys values.yaml does not have: {stale}"


def test_every_value_has_a_param_comment():
    documented = set(re.findall(r"^\s*## @param (\S+)", (REPO / "values.yaml").read_text(), re.M))
    leaves = set()

    def walk(values, schema, prefix=""):
        for name, value in values.items():
            sub = schema.get("properties", {}).get(name, {})
            path = f"{prefix}{name}"
            nested = isinstance(value, dict) and value and path not in documented
            if nested and sub.get("additionalProperties") is False:
                walk(value, sub, f"{path}.")
            else:
                leaves.add(f"{prefix}{name}")

    walk(VALUES, SCHEMA)
    assert not leaves - documented, f"values without a ## @param comment: {leaves - documented}"


def test_readme_parameters_table_is_current():
    generator = os.environ.get("README_GENERATOR")
    if not generator or not Path(generator).is_file():
        pytest.skip("$README_GENERATOR is not set or missing: run via `make test` (make tools)")
    result = subprocess.run(
        [str(REPO / "hack/gen-docs.sh"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
