#!/usr/bin/env python3
"""Prints the KFP backend matrix from the harness results and fails when a cell fails.

Usage: matrix.py OUT_DIR VERSION... [--readme README.md] [--check] [--expect-fail COLUMN]

Reads OUT_DIR/<version>/result.json (written by harness_test.go, or by run-version.sh when the
module proxy does not serve that KFP commit) and OUT_DIR/<version>/packages/*.render.log (what
`tao-kfp render --kfp-version` said was lost, or why it refused). Writes OUT_DIR/matrix.md;
with --readme, replaces the block between the README's kfp-backends markers with that table
(--check: fail instead when the README's block differs). The "KFP code from" column says where
KFP's code came from: the Go module proxy (what CI runs) or a local tree of the release commit
(KFP_BACKENDS_SRC, never in CI). --expect-fail COLUMN (negative controls, controls.sh): succeed
only when COLUMN failed in every row that ran.
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

PROXY = "Go module proxy (CI)"
COLUMNS = ("upload parse", "run creation", "driver pod spec", "upstream lookups")
BEGIN, END = "<!-- kfp-backends:begin -->", "<!-- kfp-backends:end -->"
HERE = Path(__file__).resolve().parent


def kubeflow_release(version: str) -> str:
    for line in (HERE / "versions.txt").read_text().splitlines():
        number, _, release = line.partition(" ")
        if number == version:
            return release
    return ""


def provenance(result: dict) -> str:
    """Where KFP's code came from, for the matrix: the proxy, or a local tree at a commit."""
    source = result.get("source", "")
    if "unavailable" in result:
        return "not served by the Go module proxy"
    if source == "proxy":
        return PROXY
    match = re.match(r"^local source tree at commit ([0-9a-f]{12})", source)
    return f"tag source tree at {match.group(1)} (local, not CI)" if match else "?"


def package_rows(out: Path, version: str):
    """Yields (package, source, cells, losses, notes) for one version."""
    vdir = out / version
    result_file = vdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    source = provenance(result) if result else "?"
    logs = sorted((vdir / "packages").glob("*.render.log"))
    for log in logs:
        name = log.name[: -len(".render.log")]
        said = [line for line in log.read_text().splitlines() if line.strip()]
        lost = [line.split(": ", 1)[1] for line in said if re.match(r"^KFP [^:]+: ", line)]
        lost = [line for line in lost if line != "nothing lost" and not line.startswith("package")]
        if not (vdir / "packages" / f"{name}.yaml").exists():
            yield name, source, {c: "refused" for c in COLUMNS}, [], said[-1:] or ["refused"]
            continue
        if "unavailable" in result:
            reason = result["unavailable"]
            yield (
                name,
                source,
                {c: "n/a" for c in COLUMNS},
                lost,
                [f"KFP source not served: {reason}"],
            )
            continue
        package = result.get("packages", {}).get(name)
        if package is None:
            notes = ["harness did not run (see go-test.log)"]
            yield name, source, {c: "FAIL" for c in COLUMNS}, lost, notes
            continue
        cells, notes = {}, []
        for column in COLUMNS:
            cell = package["columns"][column]
            cells[column] = "pass" if cell["pass"] else "FAIL"
            notes += [f"{column}: {e}" for e in cell.get("errors", [])[:3]]
        by_loss = defaultdict(list)
        for task, described in sorted(package.get("tasks", {}).items()):
            for item in described.get("lost") or []:
                by_loss[re.sub(r" (map\[|\[|\d).*$", "", item)].append(task)
        lost += [f"{what} ({len(tasks)} tasks)" for what, tasks in sorted(by_loss.items())]
        yield name, source, cells, lost, notes


def main(argv) -> int:
    readme = check = expect_fail = None
    if "--check" in argv:
        argv.remove("--check")
        check = True
    if "--expect-fail" in argv:
        i = argv.index("--expect-fail")
        expect_fail = argv[i + 1]
        del argv[i : i + 2]
    if "--readme" in argv:
        i = argv.index("--readme")
        readme = Path(argv[i + 1])
        del argv[i : i + 2]
    out, versions = Path(argv[0]), argv[1:]
    failed = False
    control = []  # expect_fail: the cell of each row
    local = {}  # versions whose KFP code came from a local tree
    lines = [
        "| KFP backend | Kubeflow | KFP code from | package | "
        + " | ".join(COLUMNS)
        + " | what is lost |",
        "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    details = []
    for version in versions:
        for name, source, cells, lost, notes in package_rows(out, version):
            failed |= any(v in ("FAIL", "refused") for v in cells.values())
            if expect_fail:
                control.append(cells[expect_fail])
            if source.endswith("(local, not CI)"):
                local[version] = True
            loss = "; ".join(dict.fromkeys(lost)) or "nothing"
            row = [version, kubeflow_release(version), source, name, *cells.values(), loss]
            lines.append("| " + " | ".join(row) + " |")
            details += [f"  {version} {name}: {note}" for note in notes]
    if local:
        lines += [
            "",
            f"CI proves only the rows from the Go module proxy; {', '.join(local)} ran the same "
            "harness on a `git archive` of the release commit (`KFP_BACKENDS_SRC`, "
            "docs/kfp-backend-harness.md) outside CI.",
        ]
    table = "\n".join(lines) + "\n"
    print(table)
    if details:
        print("\n".join(details))
    (out / "matrix.md").write_text(table)
    if expect_fail:
        # n/a (KFP's code not served here) is reported, not counted, as in the matrix itself.
        ran = [cell for cell in control if cell != "n/a"]
        held = all(cell == "FAIL" for cell in ran)
        verdict = "not run here (n/a)" if not ran else "holds" if held else "DOES NOT HOLD"
        print(f"control {verdict}: {expect_fail} = {', '.join(control)}")
        return 0 if held else 1
    if readme is not None and "| n/a |" in table:
        print(f"{readme} not updated: some versions could not run here (n/a above)")
    elif readme is not None:
        text = readme.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        new = text[:start] + "\n" + table + text[end:]
        if check and new != text:
            print(f"{readme}: KFP backend table is stale; run make kfp-backends", file=sys.stderr)
            return 1
        if not check:
            readme.write_text(new)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
