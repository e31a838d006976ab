"""Cluster smoke test: install, helm test, upgrade and uninstall the chart on a live cluster.

Needs a cluster with Kubeflow Pipelines and the tools image (hack/kind-up.sh makes one), then
`make test-cluster`. The tests run in file order against one release (module-scoped fixtures):
each step checks an outcome - the upload Job succeeded (and was deleted), KFP has the pipeline
version, helm test passes and leaves nothing, a changed upgrade adds exactly one version, an
unchanged one adds none, the workspace claim outlives the release and nothing else does.
"""

from __future__ import annotations

import pykube
import pytest

pytestmark = pytest.mark.cluster


def _release_objects(kind, release, component=None):
    selector = {"app.kubernetes.io/instance": release.name}
    if component:
        selector["app.kubernetes.io/component"] = component
    api = pykube.HTTPClient(pykube.KubeConfig.from_file(release.kubeconfig))
    return list(kind.objects(api).filter(namespace=release.namespace, selector=selector))


@pytest.fixture(scope="module")
def installed(release):
    """The release after `helm install` returned (its post-install hook Jobs have finished)."""
    release.install_or_upgrade("install")
    return release


def test_install_upload_job_succeeded_and_was_deleted(installed):
    # `helm install` fails when a hook Job fails, so returning means the upload succeeded;
    # hook-delete-policy hook-succeeded then removed the Job (its log went to helm's output).
    assert not _release_objects(pykube.Job, installed, component="pipeline-upload")


def test_install_pipeline_version_exists_in_kfp(installed, kfp_client):
    versions = installed.pipeline_versions(kfp_client)
    assert versions is not None, f"KFP has no pipeline named {installed.pipeline_name!r}"
    assert len(versions) == 1, versions
    assert versions[0].startswith(installed.chart_version), (
        f"version {versions[0]!r} is not named after the chart version {installed.chart_version}"
    )


def test_helm_test_passes(installed):
    # Fails the test (with pod logs) on a non-zero exit.
    # No --logs: test pods print their logs through hook-output-log-policy and are deleted.
    installed.run("test", installed.name, "--timeout", "5m")
    for kind in (pykube.Pod, pykube.ServiceAccount, pykube.Role, pykube.RoleBinding):
        left = [o.name for o in _release_objects(kind, installed, component="test")]
        assert not left, f"helm test left {kind.__name__} objects: {left}"


def test_upgrade_with_changed_values_adds_one_version(installed, kfp_client):
    before = installed.pipeline_versions(kfp_client)
    installed.set_values.append(installed.upgrade_set)
    installed.install_or_upgrade("upgrade")
    after = installed.pipeline_versions(kfp_client)
    added = sorted(set(after) - set(before))
    assert len(added) == 1, (
        f"--set {installed.upgrade_set} should add one version: before {before}, after {after}"
    )
    assert added[0].startswith(installed.chart_version), added


def test_unchanged_upgrade_adds_no_version(installed, kfp_client):
    before = installed.pipeline_versions(kfp_client)
    installed.install_or_upgrade("upgrade")  # the same values as the previous upgrade
    after = installed.pipeline_versions(kfp_client)
    assert after == before


def test_uninstall_keeps_workspace_claim(installed):
    claims = _release_objects(pykube.PersistentVolumeClaim, installed)
    assert claims, "the release created no PersistentVolumeClaim"
    installed.run("uninstall", installed.name, "--wait", "--timeout", "5m")
    api = pykube.HTTPClient(pykube.KubeConfig.from_file(installed.kubeconfig))
    for claim in claims:
        kept = pykube.PersistentVolumeClaim.objects(api).filter(namespace=installed.namespace)
        assert kept.get_or_none(name=claim.name) is not None, f"claim {claim.name} was deleted"
    status = installed.run("status", installed.name, check=False)
    assert status.returncode != 0, "the release still exists after helm uninstall"
    for kind in (pykube.Job, pykube.Pod, pykube.ConfigMap, pykube.Secret, pykube.ServiceAccount):
        left = [o.name for o in _release_objects(kind, installed)]
        assert not left, f"uninstall left {kind.__name__} objects: {left}"
