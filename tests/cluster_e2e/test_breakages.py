"""Deliberate breakages that must make `make e2e-cluster` fail, each applied here and refused by
Kubernetes itself (the third, a GPU step without its toleration, is in test_pipeline_pods.py):

- a chart pod that violates PodSecurity `restricted`: the chart packaged with one container
  setting of its securityContext flipped; the suite's preflight (server-side dry run) fails,
  and a real install fails: the Job controller's pod is refused (FailedCreate), Helm times out
  on the hook, and the suite's "no pod refused" check names the refusal;
- a rule the upload needs removed from KFP's aggregated edit role: the clusterrole-aggregation
  controller drops it from kubeflow-pipelines-edit, and the suite's SubjectAccessReview check
  of the upload's ServiceAccount names what it can no longer do.
"""

from __future__ import annotations

import subprocess
import tarfile

import pytest
from cluster_helpers import ROOT, helm_binary, wait_until
from test_lifecycle import (
    Scenario,
    kfp_cluster_roles,
    upload_can_do_exactly_what_it_needs,
)

pytestmark = pytest.mark.e2e_cluster

DEFAULT = ROOT / "ci" / "01-default-values.yaml"
MULTI_USER = ROOT / "ci" / "05-multi-user-values.yaml"
SAFE = "allowPrivilegeEscalation: false"


@pytest.fixture
def scenario(cluster, tmp_path, request, chart):
    setup = Scenario(cluster, request.param, tmp_path, chart=chart)
    yield setup
    setup.close()
    cluster.delete_namespace(setup.namespace)


@pytest.fixture
def chart(request, tmp_path):
    """The chart as `helm package` ships it, with the breakage the test names applied."""
    breakage = getattr(request, "param", None)
    subprocess.run(
        [helm_binary(), "package", str(ROOT), "-d", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (package,) = tmp_path.glob("*.tgz")
    with tarfile.open(package) as archive:
        archive.extractall(tmp_path / "chart", filter="data")
    (root,) = (tmp_path / "chart").iterdir()
    if breakage == "privilege-escalation":
        helpers = root / "templates" / "_helpers.tpl"
        text = helpers.read_text()
        assert SAFE in text, f"{SAFE!r} is no longer in _helpers.tpl: update this breakage"
        helpers.write_text(text.replace(SAFE, "allowPrivilegeEscalation: true"))
    return root


@pytest.mark.parametrize("chart", ["privilege-escalation"], indirect=True)
@pytest.mark.parametrize("scenario", [DEFAULT], indirect=True, ids=["01-default"])
def test_a_chart_pod_violating_restricted_fails_the_suite(cluster, scenario):
    s = scenario
    s.prepare()
    with pytest.raises(AssertionError, match='violates PodSecurity "restricted:latest"'):
        s.pod_templates_admitted()

    # For real: the hook Job's pod is refused by the API server when the Job controller
    # creates it, so Helm waits on the hook until its timeout.
    result = s.install("install", "--timeout", "20s", check=False)
    assert result.returncode != 0, "helm install passed with a pod PodSecurity refuses"
    with pytest.raises(AssertionError, match="allowPrivilegeEscalation != false"):
        s.no_pod_refused()


@pytest.mark.parametrize("scenario", [MULTI_USER], indirect=True, ids=["05-multi-user"])
def test_a_rule_the_upload_needs_removed_fails_the_suite(cluster, scenario):
    s = scenario
    s.prepare()  # KFP's ClusterRoles, as shipped
    # The upload's identity and its binding to kubeflow-pipelines-edit, as the chart makes them.
    identity = [
        doc
        for doc in s.template()
        if doc["kind"] in ("ServiceAccount", "RoleBinding")
        and doc["metadata"]["name"].endswith(("-upload", "-upload-kfp-edit"))
    ]
    assert len(identity) == 2, [d["metadata"]["name"] for d in identity]
    cluster.apply(identity, as_tenant=True, namespace=s.namespace)
    upload_can_do_exactly_what_it_needs(cluster, s)

    roles = kfp_cluster_roles()
    (edit,) = [r for r in roles if r["metadata"]["name"] == "aggregate-to-kubeflow-pipelines-edit"]
    runs = [rule for rule in edit["rules"] if rule["resources"] == ["runs"]]
    assert runs, "KFP's edit role has no rule for runs: update this breakage"
    edit["rules"] = [rule for rule in edit["rules"] if rule not in runs]
    try:
        cluster.apply([edit])

        def aggregated_without_creating_runs():
            # (the view role, aggregated into edit too, still lets it get and list runs)
            live = cluster.rbac.read_cluster_role("kubeflow-pipelines-edit")
            return not any(
                "runs" in (rule.resources or []) and "create" in rule.verbs
                for rule in live.rules or []
            )

        wait_until(aggregated_without_creating_runs, 60, "kubeflow-pipelines-edit re-aggregated")
        with pytest.raises(AssertionError, match=r"lacks what the upload needs.*runs"):
            upload_can_do_exactly_what_it_needs(cluster, s)
    finally:
        cluster.apply(kfp_cluster_roles())
