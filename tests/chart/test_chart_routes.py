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
