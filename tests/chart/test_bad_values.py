"""Every file in bad-values/ fails `helm template` with the message its header promises.

Each file is applied on top of ci/01-default-values.yaml (a valid install). Its first line is
either `# expect: <substring of the error>` (template checks, templates/_validate.tpl: same
text under Helm 3 and 4) or `# expect-schema: <dotted.key> [property]` (values.schema.json:
Helm 3 reports `- dotted.key: ...`, Helm 4 `at '/dotted/key': ...`). A comment says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
from chart_helpers import CI_DIR, template_args

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
    expectations = [expectation(path) for path in BAD_VALUES]
    assert len(BAD_VALUES) >= 25
    assert len(set(expectations)) == len(expectations), "two bad-values files expect the same error"


@pytest.mark.parametrize("bad", BAD_VALUES, ids=[path.stem for path in BAD_VALUES])
def test_bad_values_fail_with_their_message(helm, chart_dir, bad):
    values = [CI_DIR / "01-default-values.yaml", bad]
    result = helm.run(*template_args(chart_dir, values), check=False)
    assert result.returncode != 0, f"{bad.name} rendered without error"
    for fragment in expected_fragments(*expectation(bad), helm.name):
        assert fragment in result.stderr, result.stderr
