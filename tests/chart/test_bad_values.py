"""Every file in bad-values/ fails `helm template` with the message its header promises.

Each file is applied on top of ci/01-default-values.yaml (a valid install). Its first line is
either `# expect: <substring of the error>` (template checks, templates/_validate.tpl: same
text under Helm 3 and 4) or `# expect-schema: <dotted.key> [property]` (values.schema.json:
Helm 3 reports `- dotted.key: ...`, Helm 4 `at '/dotted/key': ...`). A comment says why.

`helm lint --strict` must fail on each of them too: Helm's lint mode turns `fail` into a log line
(helm pkg/engine/engine.go initFunMap: v3.18.0:224, v4.1.4:229), so templates/_validate.tpl
makes lint fail another way.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import yaml
from chart_helpers import CI_DIR, namespace_of, template_args

BAD_VALUES = sorted((Path(__file__).parent / "bad-values").glob("*.yaml"))


def expectation(path: Path) -> Tuple[str, str]:
    first = path.read_text().splitlines()[0]
    for kind in ("expect", "expect-schema"):
        prefix = f"# {kind}: "
        if first.startswith(prefix):
            return kind, first[len(prefix) :].strip()
    raise AssertionError(
        f"{path.name}: first line must be '# expect: ...' or '# expect-schema: ...'"
    )


def expected_fragments(kind: str, text: str, helm_name: str) -> List[str]:
    if kind == "expect":
        return [text]
    key, _, prop = text.partition(" ")
    if helm_name == "helm3":
        location = "- (root):" if key == "." else f"- {key}:"
    else:
        location = "at '':" if key == "." else f"at '/{key.replace('.', '/')}'"
    return [location] + ([prop] if prop else [])


def test_there_are_enough_distinct_cases():
    """Each file is its own case: distinct values, and distinct messages for template checks."""
    assert len(BAD_VALUES) >= 90
    messages = [text for kind, text in map(expectation, BAD_VALUES) if kind == "expect"]
    assert len(set(messages)) == len(messages), "two bad-values files expect the same message"
    values = [yaml.safe_load(path.read_text()) for path in BAD_VALUES]
    assert len({repr(v) for v in values}) == len(values), (
        "two bad-values files hold the same values"
    )


@pytest.mark.parametrize("bad", BAD_VALUES, ids=[path.stem for path in BAD_VALUES])
def test_bad_values_fail_with_their_message(helm, chart_dir, bad):
    values = [CI_DIR / "01-default-values.yaml", bad]
    result = helm.run(*template_args(chart_dir, values), check=False)
    assert result.returncode != 0, f"{bad.name} rendered without error"
    for fragment in expected_fragments(*expectation(bad), helm.name):
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("bad", BAD_VALUES, ids=[path.stem for path in BAD_VALUES])
def test_lint_strict_fails_on_bad_values(helm, chart_dir, bad):
    """Lint (its own release name, test-release) fails wherever `helm install` would."""
    if "null" in bad.read_text():
        # Lint's values rule coalesces the user's values into the chart defaults in place
        # (helm v3.18.0 pkg/lint/rules/values.go:73-74, v4.1.4 pkg/chart/v2/lint/rules/
        # values.go:66-67: CoalesceTables on shared nested maps),
        # so the template rule no longer sees a `key: null` that deletes a default: lint
        # cannot check such values. Install drops the key as documented.
        pytest.skip("helm lint cannot see null deletions of defaults")
    base = CI_DIR / "01-default-values.yaml"
    namespace = namespace_of(base)
    result = helm.run(
        "lint",
        "--strict",
        str(chart_dir),
        "-f",
        str(base),
        "-f",
        str(bad),
        "-n",
        namespace,
        check=False,
    )
    assert result.returncode != 0, f"helm lint --strict passed with {bad.name}"
    kind, text = expectation(bad)
    if kind == "expect":
        # Helm 4's lint log quotes the message, escaping the quotes inside it.
        assert text in (result.stdout + result.stderr).replace('\\"', '"')
