"""The chart and the route registry agree: each tao.version uploads its route's package."""

from __future__ import annotations

import json

import pytest
import yaml
from chart_helpers import CI_DIR, REPO, parse_docs, template_args

from tao_kfp import routes
from tao_kfp.environment import EnvironmentConfig


def test_the_schema_takes_exactly_the_registered_versions():
    schema = json.loads((REPO / "values.schema.json").read_text())
    version = schema["properties"]["tao"]["properties"]["version"]["anyOf"]
    assert version[0]["enum"] == list(routes.VERSIONS)
    assert version[1]["enum"] == [int(v) for v in routes.VERSIONS]


@pytest.mark.parametrize("version", routes.VERSIONS)
def test_each_version_uploads_its_routes_package_with_its_commands(helm, chart_dir, version):
    """`--set tao.version=V` alone: the route's package in the pipeline ConfigMap, its commands."""
    values = [CI_DIR / "01-default-values.yaml"]
    result = helm.run(*template_args(chart_dir, values, {"tao.version": version}), check=False)
    assert result.returncode == 0, result.stderr
    docs = parse_docs(result.stdout)
    route = routes.route_for(version)
    name = route.package.rsplit("/", 1)[-1]
    pipeline = next(
        d for d in docs if d["kind"] == "ConfigMap" and "pipeline" in d["metadata"]["name"]
    )
    assert list(pipeline["data"]) == [name]
    assert pipeline["data"][name] == (REPO / "files" / route.package).read_text()
    upload = next(
        d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("-upload")
    )
    args = upload["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--package=/etc/tao-kfp/pipeline/{name}" in args
    env_map = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-env")
    )
    env = EnvironmentConfig.model_validate(yaml.safe_load(env_map["data"]["environment.yaml"]))
    assert env.tao.entrypoint == routes.commands_for(version).entrypoint


def test_a_command_of_another_route_is_refused_at_install(helm, chart_dir):
    values = [CI_DIR / "01-default-values.yaml"]
    sets = {"tao.version": "6", "tao.entrypoint": "classification_tf1"}
    result = helm.run(*template_args(chart_dir, values, sets), check=False)
    assert result.returncode != 0
    assert "set tao.version=5, or tao.entrypoint=classification_pyt" in result.stderr


def test_the_chart_installs_current_taos_route_by_default():
    """values.yaml and the environment config agree: new installs get tao.version 6."""
    values = yaml.safe_load((REPO / "values.yaml").read_text())
    assert values["tao"]["version"] == EnvironmentConfig().tao.version == "6"


def _init_job(docs: list) -> dict:
    return next(
        d for d in docs if d["kind"] == "Job" and d["metadata"]["name"].endswith("-workspace-init")
    )


@pytest.mark.parametrize("version", [None, *routes.VERSIONS])
def test_the_init_job_renders_only_the_spec_its_route_reads(helm, chart_dir, version):
    """tao-kfp.workspaceSpec follows Route.workspace_spec: TF1's spec file, or none (6)."""
    values = [CI_DIR / "01-default-values.yaml"]
    sets = {"tao.version": version} if version else {}
    result = helm.run(*template_args(chart_dir, values, sets), check=False)
    assert result.returncode == 0, result.stderr
    docs = parse_docs(result.stdout)
    route = routes.route_for(version or EnvironmentConfig().tao.version)
    pod = _init_job(docs)["spec"]["template"]["spec"]
    names = [c["name"] for c in pod.get("initContainers", []) + pod["containers"]]
    specs_maps = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-specs")
    ]
    if route.workspace_spec:
        assert names == ["layout", "spec"]
        (specs_map,) = specs_maps
        base = (REPO / "files" / route.workspace_spec).read_text()
        assert specs_map["data"]["base.cfg"] == base
        assert {v["name"] for v in pod["volumes"]} >= {"specs"}
    else:
        assert names == ["layout"]
        assert specs_maps == []
        assert "specs" not in {v["name"] for v in pod["volumes"]}
