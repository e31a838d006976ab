"""The route registry, and the checks every route's compiled package passes (tao_kfp.routes)."""

from __future__ import annotations

from functools import cache

import pytest

from helpers.packages import driver_gpu_limit, longest_chain, upstream
from tao_kfp import compiler, routes
from tao_kfp.environment import EnvironmentConfig
from tao_kfp.package import PackageError, adapt_package, load_package
from tao_kfp.resources import SOURCE_FILES
from tao_kfp.routes import pyt, tf1

ROUTE_IDS = [route.name for route in routes.ROUTES]


@cache
def package(name: str) -> list:
    route = next(r for r in routes.ROUTES if r.name == name)
    return load_package(SOURCE_FILES / route.package)


def route_named(name: str) -> routes.Route:
    return next(r for r in routes.ROUTES if r.name == name)


def executor(spec: dict, task: str) -> dict:
    component = spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    label = spec["components"][component]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


# --- the registry -----------------------------------------------------------------------------


def test_each_tao_version_has_exactly_one_route():
    assert routes.VERSIONS == ("3", "5", "6")
    assert routes.route_for("3") is routes.route_for("5") is tf1.ROUTE
    assert routes.route_for(6) is pyt.ROUTE


def test_an_unknown_version_names_the_known_ones():
    with pytest.raises(ValueError, match="use one of 3, 5, 6"):
        routes.route_for("7")


def test_tao_version_alone_selects_the_route_commands():
    tao = EnvironmentConfig.model_validate({"tao": {"version": "6"}}).tao
    assert (tao.entrypoint, tao.deploy_entrypoint) == ("classification_pyt", "classification_pyt")
    tao = EnvironmentConfig.model_validate({"tao": {"version": "5"}}).tao
    assert (tao.entrypoint, tao.deploy_entrypoint) == ("classification_tf1", "classification_tf1")
    tao = EnvironmentConfig.model_validate({"tao": {"version": "3"}}).tao
    assert (tao.entrypoint, tao.converter) == ("classification", "converter")


def test_the_default_install_runs_current_taos_pytorch_route():
    """New installs get current TAO (tao.version 6); the TF1 routes are opt-in (README)."""
    tao = EnvironmentConfig().tao
    assert tao.version == "6"
    assert (tao.entrypoint, tao.deploy_entrypoint) == ("classification_pyt", "classification_pyt")
    assert compiler.DEFAULT_ROUTE is pyt.ROUTE
    assert compiler.DEFAULT_OUTPUT == SOURCE_FILES / "pipelines/tao-classification-pyt.yaml"


def test_compile_out_without_a_version_compiles_the_default_installs_route(tmp_path):
    from tao_kfp.cli import main

    out = tmp_path / "default.yaml"
    assert main(["compile", "--out", str(out)]) == 0
    assert out.read_text() == compiler.DEFAULT_OUTPUT.read_text()


def test_another_routes_command_is_refused():
    from pydantic import ValidationError

    with pytest.raises(
        ValidationError, match="set tao.version=3, or tao.entrypoint=classification_pyt"
    ):
        EnvironmentConfig.model_validate({"tao": {"version": "6", "entrypoint": "classification"}})


def test_every_route_compiles_to_its_own_package_name():
    names = [route.pipeline_name for route in routes.ROUTES]
    packages = [route.package for route in routes.ROUTES]
    assert len(set(names)) == len(names) and len(set(packages)) == len(packages)
    for route in routes.ROUTES:
        assert routes.route_of_package(package(route.name)[0]) is route


def test_a_package_is_refused_for_another_routes_version():
    env = EnvironmentConfig.model_validate({"tao": {"version": "6"}})
    with pytest.raises(PackageError, match="tao-classification-pyt.yaml"):
        adapt_package(package("tf1"), env)


# --- the same checks on every route's package ---------------------------------------------------


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_committed_package_is_in_sync(name):
    route = route_named(name)
    fresh = compiler.compile_to_text(compiler.route_environment(route))
    assert (SOURCE_FILES / route.package).read_text() == fresh, compiler.FIX_COMMAND


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_tasks_are_the_declared_steps_in_a_chain_of_seven(name):
    spec = package(name)[0]
    route = route_named(name)
    assert set(spec["root"]["dag"]["tasks"]) == set(route.step_kinds)
    chain = longest_chain(spec)
    assert len(chain) == 7, chain
    assert chain[0] == "validate-inputs"


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_gpu_requested_by_exactly_the_gpu_steps(name):
    spec = package(name)[0]
    for task, kind in route_named(name).step_kinds.items():
        resources = executor(spec, task)["container"].get("resources", {})
        assert ("accelerator" in resources) == (kind == "gpu"), task


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_display_names_are_task_keys_and_nothing_is_cached(name):
    tasks = package(name)[0]["root"]["dag"]["tasks"]
    for key, task in tasks.items():
        assert task["taskInfo"]["name"] == key
        assert not task["cachingOptions"].get("enableCache", False), key


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_run_form_is_small_and_documented(name):
    parameters = package(name)[0]["root"]["inputDefinitions"]["parameters"]
    assert len(parameters) <= 12
    assert {"dataset_path", "dataset_format", "pretrained_model", "epochs", "batch_size"} <= set(
        parameters
    )
    assert parameters["num_gpus"]["parameterType"] == "STRING"
    for parameter, definition in parameters.items():
        assert definition.get("description"), parameter


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_run_directory_is_per_run(name):
    inputs = package(name)[0]["root"]["dag"]["tasks"]["validate-inputs"]["inputs"]["parameters"]
    assert inputs["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_deploy_steps_run_in_the_deploy_image_where_the_version_says(name):
    route = route_named(name)
    for version, commands in route.versions.items():
        env = EnvironmentConfig.model_validate(
            {"tao": {"version": version}, "images": {"taoDeploy": "example.com/deploy:1"}}
        )
        spec = adapt_package(package(name), env)[0]
        for task, kind in route.step_kinds.items():
            image = executor(spec, task)["container"]["image"]
            if kind == "cpu":
                assert image == env.images.tools, task
            elif task in route.deploy_tasks and commands.deploy_image:
                assert image == "example.com/deploy:1", (version, task)
            else:
                assert image == env.images.tao, (version, task)


@pytest.mark.parametrize("name", ROUTE_IDS)
def test_final_model_is_a_pipeline_output(name):
    outputs = package(name)[0]["root"]["dag"]["outputs"]["artifacts"]
    (selector,) = [s for o in outputs.values() for s in o["artifactSelectors"]]
    assert selector["producerSubtask"] == route_named(name).final_model_task


# --- the PyTorch route's DAG ------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, parents",
    [
        ("prepare-dataset", {"validate-inputs"}),
        ("download-pretrained", {"validate-inputs"}),
        ("train", {"validate-inputs", "prepare-dataset", "download-pretrained"}),
        ("evaluate", {"validate-inputs", "train"}),
        ("compress", {"validate-inputs", "train"}),
        ("evaluate-compressed", {"validate-inputs", "compress"}),
        ("inference", {"validate-inputs", "compress"}),
        ("export-onnx", {"validate-inputs", "compress"}),
        ("gen-trt-engine", {"validate-inputs", "export-onnx"}),
        ("evaluate-engine", {"validate-inputs", "gen-trt-engine"}),
    ],
)
def test_pyt_steps_wait_only_for_what_they_need(task, parents):
    assert upstream(package("pyt")[0]["root"]["dag"]["tasks"][task]) == parents


@pytest.mark.parametrize("arguments, expected", [({}, "1"), ({"num_gpus": "4"}, "4")])
def test_pyt_train_and_compress_get_num_gpus_other_gpu_steps_one(arguments, expected):
    spec = package("pyt")[0]
    for task in ("train", "compress"):
        assert driver_gpu_limit(spec, task, arguments) == expected, task
    for task, kind in pyt.STEP_KINDS.items():
        if kind == "gpu" and task not in ("train", "compress"):
            assert driver_gpu_limit(spec, task, arguments) == "1", task


def test_pyt_run_form():
    parameters = package("pyt")[0]["root"]["inputDefinitions"]["parameters"]
    assert parameters["compression"]["defaultValue"] == "quantize"
    assert parameters["engine_precision"]["defaultValue"] == "fp16"


def test_pyt_evaluations_publish_metrics_and_a_confusion_matrix():
    spec = package("pyt")[0]
    for task in ("evaluate", "evaluate-compressed"):
        component = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
        artifacts = component["outputDefinitions"]["artifacts"]
        types = {a["artifactType"]["schemaTitle"] for a in artifacts.values()}
        assert types == {"system.Metrics", "system.ClassificationMetrics"}


@pytest.mark.parametrize("config_text", ["tao:\n  version: '6'\n", "gpu:\n  count: 1\n"])
def test_render_shows_the_pyt_dag(tmp_path, capsys, config_text):
    """tao.version 6, or a config that leaves it to the default: the PyTorch route's DAG."""
    from tao_kfp.cli import main

    config = tmp_path / "env.yaml"
    config.write_text(config_text)
    assert main(["render", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "name: tao-classification-pyt" in out
    for task in pyt.STEP_KINDS:
        assert f"  {task}:" in out, task
    assert "TAO_ENTRYPOINT" in out and "classification_pyt" in out


def test_a_config_without_tao_version_renders_every_routes_package(tmp_path, capsys):
    """What the KFP-backends harness does (hack/kfp-backends/env.yaml sets no tao.version)."""
    from tao_kfp.cli import main

    config = tmp_path / "env.yaml"
    config.write_text("workspace:\n  claimName: tao-kfp-workspace\n")
    for route in routes.ROUTES:
        package = str(SOURCE_FILES / route.package)
        assert main(["render", "--config", str(config), "--package", package]) == 0, route.name
        assert f"name: {route.pipeline_name}" in capsys.readouterr().out
    config.write_text("tao:\n  version: '3'\n")
    package = str(SOURCE_FILES / pyt.ROUTE.package)
    assert main(["render", "--config", str(config), "--package", package]) == 2
    assert "tao-classification-pyt" in capsys.readouterr().err
