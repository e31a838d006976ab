"""Rendered manifests are valid Kubernetes objects (oldest and newest supported version) and
pass checkov, where every skip is an annotation on the resource with its reason."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
from chart_helpers import SCENARIOS, kube_version_bounds

KUBE_VERSIONS = kube_version_bounds()


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_objects_are_valid_for_supported_kubernetes(renderer, helm, scenario, kube_version):
    docs = renderer.docs(helm, scenario, kube_version)
    assert docs
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{scenario}: {name} is invalid for Kubernetes {kube_version}: {exc.message}"
            )


@pytest.fixture(scope="session")
def checkov():
    path = os.environ.get("CHECKOV")
    if not path:
        pytest.skip("$CHECKOV is not set: run the chart tests via `make test` (make tools)")
    if not Path(path).is_file():
        pytest.skip(f"$CHECKOV={path} does not exist: run `make tools`")
    return path


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_checkov_reports_no_failures(renderer, helm4, checkov, scenario, tmp_path):
    # Helm 3 and 4 render identical objects (test_render), so one scan per scenario.
    rendered = tmp_path / f"{scenario}.yaml"
    rendered.write_text(renderer.text(helm4, scenario))
    # -f on the rendered file: checkov's helm mode silently checks nothing without helm.
    result = subprocess.run(
        [
            checkov,
            "-f",
            str(rendered),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['check_name']} on {check['resource']}"
        for entry in reports
        for check in entry.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    skipped = [
        check for entry in reports for check in entry.get("results", {}).get("skipped_checks", [])
    ]
    for check in skipped:
        assert check.get("suppress_comment"), f"{check['check_id']} skipped without a reason"
