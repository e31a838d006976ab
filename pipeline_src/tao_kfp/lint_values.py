"""``tao-kfp lint-values FILE...``: check values files before `helm install`.

Three checks, in the order a user meets the problems:
- duplicated keys: YAML keeps only the last one, so a repeated ``ngc:`` or ``upload:`` silently
  drops a whole block, and Helm cannot see it (it reads the parsed values);
- the chart's own install checks (values.schema.json and templates/_validate.tpl), by running
  ``helm template`` with the files when helm and the chart are at hand;
- the rules tao-kfp applies to the same values (tao_kfp.value_rules), which also warn about
  values that install but never take effect (a recurring run on a date that does not exist).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from tao_kfp import value_rules
from tao_kfp.resources import SOURCE_FILES


def duplicate_keys(text: str) -> List[Tuple[int, str, int]]:
    """(line, dotted key, line of the first occurrence) of every key repeated in one mapping."""
    found: List[Tuple[int, str, int]] = []

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: Dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                dotted = f"{path}.{key}" if path else key
                line = key_node.start_mark.line + 1
                if key in seen:
                    found.append((line, dotted, seen[key]))
                else:
                    seen[key] = line
                walk(value_node, dotted)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is not None:
            walk(document, "")
    return found


def merge_values(base: Dict[str, Any], override: Any) -> Dict[str, Any]:
    """Helm's coalescing of a values file onto the values so far: maps merge, null deletes."""
    if not isinstance(override, dict):
        return base
    result = dict(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_values(result[key], value)
        else:
            result[key] = value
    return result


def release_namespace(values: Dict[str, Any]) -> str:
    """The namespace the chart wants the release in (see the chart's pipelineNamespace helper)."""
    kfp = values.get("kfp") or {}
    if kfp.get("pipelineNamespace"):
        return str(kfp["pipelineNamespace"])
    if kfp.get("mode") == "multiUser" and kfp.get("namespace"):
        return str(kfp["namespace"])
    # The chart's two in-cluster forms: <service>[:port] (the release namespace itself) and
    # <service>.<namespace>[.svc...]; an external URL names no namespace.
    host = str(kfp.get("host", ""))
    match = re.match(
        r"^https?://[a-z0-9-]+\.([a-z0-9-]+)(\.svc(\.[^/:]*)?)?(:[0-9]+)?(/.*)?$", host
    )
    return match.group(1) if match else "default"


def find_helm(explicit: Optional[str]) -> Optional[str]:
    """The helm binary to use: --helm, else $HELM, else helm on PATH (None when there is none)."""
    for candidate in (explicit, os.environ.get("HELM"), shutil.which("helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def helm_problems(helm: str, chart: Path, files: Sequence[Path], namespace: str) -> List[str]:
    """The chart's install-time messages for these files ([] when `helm template` renders)."""
    args = [helm, "template", "lint-values", str(chart), "--namespace", namespace]
    for path in files:
        args += ["-f", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode == 0:
        return []
    lines = [line.strip() for line in result.stderr.splitlines()]
    messages = [line[2:] for line in lines if line.startswith("- ")]
    if not messages:  # a schema error or anything else: its own lines
        messages = [line for line in lines if line and "symbolic link" not in line]
    return [message for message in messages if not message.startswith("Use --debug")]


def lint(
    files: Sequence[Path],
    chart: Optional[Path],
    helm: Optional[str],
    namespace: Optional[str],
) -> Tuple[List[str], List[str], List[str]]:
    """(errors, warnings, notes) of values files applied in order onto the chart's values.yaml."""
    errors: List[str] = []
    warnings: List[str] = []
    notes: List[str] = []
    values: Dict[str, Any] = {}
    if chart is not None and (chart / "values.yaml").is_file():
        values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8")) or {}
    readable = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            for line, key, first in duplicate_keys(text):
                errors.append(
                    f"{path}:{line}: key '{key}' appears again (first at line {first}): YAML "
                    "keeps only the last one, so everything under the first is dropped; merge "
                    "the two"
                )
            values = merge_values(values, yaml.safe_load(text))
            readable.append(path)
        except (OSError, UnicodeDecodeError) as error:
            errors.append(f"{path}: cannot read it ({error})")
        except yaml.YAMLError as error:
            errors.append(f"{path}: not valid YAML: {' '.join(str(error).split())}")
    rule_errors, rule_warnings = value_rules.values_problems(values)
    errors += [f"tao-kfp rules: {message}" for message in rule_errors]
    warnings += rule_warnings
    if helm and chart is not None and readable == list(files):
        namespace = namespace or release_namespace(values)
        errors += [
            f"helm template (namespace {namespace}): {message}"
            for message in helm_problems(helm, chart, files, namespace)
        ]
    elif not helm:
        notes.append(
            "helm not found (--helm, $HELM or PATH): the chart's own install checks did not "
            "run; only duplicate keys and tao-kfp's rules were checked"
        )
    elif chart is None:
        notes.append("no chart found (--chart): the chart's own install checks did not run")
    return errors, warnings, notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``tao-kfp lint-values``."""
    parser.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="values files, in -f order"
    )
    parser.add_argument(
        "--chart",
        type=Path,
        help="chart directory or .tgz (default: the chart this package came from, if present)",
    )
    parser.add_argument("--helm", help="helm binary (default: $HELM, else helm on PATH)")
    parser.add_argument(
        "--namespace",
        help="release namespace (default: the one the values imply, as `helm install -n` needs)",
    )


def run(args: argparse.Namespace) -> int:
    """Prints one line per problem; exits 1 when there is an error (warnings do not fail)."""
    chart = args.chart
    if chart is None and (SOURCE_FILES.parent / "Chart.yaml").is_file():
        chart = SOURCE_FILES.parent
    errors, warnings, notes = lint(args.files, chart, find_helm(args.helm), args.namespace)
    for message in errors:
        print(f"error: {message}")
    for message in warnings:
        print(f"warning: {message}")
    for message in notes:
        print(f"note: {message}")
    names = " ".join(str(path) for path in args.files)
    if errors:
        print(f"{names}: {len(errors)} problem(s); fix them before `helm install`.")
        return 1
    print(f"{names}: no problems found.")
    return 0
