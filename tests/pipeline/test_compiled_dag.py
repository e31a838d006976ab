"""The TF1 route's committed package (tao.version 3 and 5): in sync, DAG shape, GPU placement,
run form, paths. The default install's package (current TAO's route) is checked with every
route's in test_routes.py and its DAG in test_pyt_dag.py."""

import re
from functools import lru_cache

import pytest
import yaml

from helpers import packages
from helpers.packages import driver_gpu_limit, upstream
from tao_kfp import compiler
from tao_kfp.package import load_package
from tao_kfp.resources import SOURCE_FILES
from tao_kfp.routes import tf1
from tao_kfp.routes.tf1 import STEP_KINDS

TF1_PACKAGE = SOURCE_FILES / tf1.ROUTE.package

GPU_STEPS = {name for name, kind in STEP_KINDS.items() if kind == "gpu"}
CPU_STEPS = set(STEP_KINDS) - GPU_STEPS


@lru_cache(maxsize=1)
def package():
    pipeline_spec, platform_spec = load_package(TF1_PACKAGE)
    return pipeline_spec, platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def tasks():
    return package()[0]["root"]["dag"]["tasks"]


def executor_of(task_name: str) -> str:
    component = tasks()[task_name]["componentRef"]["name"]
    return package()[0]["components"][component]["executorLabel"]


def longest_chain() -> list:
    return packages.longest_chain(package()[0])


def test_committed_package_is_in_sync_with_source():
    fresh = compiler.compile_to_text(compiler.route_environment(tf1.ROUTE))
    assert TF1_PACKAGE.read_text() == fresh, (
        f"files/pipelines is stale; run: {compiler.FIX_COMMAND}"
    )


def test_compile_check_fails_and_prints_the_fix_when_out_of_date(tmp_path, capsys):
    from tao_kfp.cli import main

    stale = tmp_path / "stale.yaml"
    stale.write_text(TF1_PACKAGE.read_text().replace("tao-classification", "old", 1))
    assert main(["compile", "--check", "--out", str(stale), "--tao-version", "3"]) == 1
    assert "tao-kfp compile" in capsys.readouterr().err
    assert main(["compile", "--check"]) == 0


def test_twelve_steps_with_the_agreed_names():
    assert set(tasks()) == set(STEP_KINDS)
    assert len(tasks()) == 12


def test_longest_chain_is_seven_tasks():
    chain = longest_chain()
    assert len(chain) == 7
    # prepare-dataset and download-pretrained tie for second place, the two exports for sixth.
    assert chain[0] == "validate-inputs"
    assert chain[1] in {"prepare-dataset", "download-pretrained"}
    assert chain[2:5] == ["train", "prune", "retrain"]
    assert chain[5] in {"export-int8", "export-fp32"}
    assert chain[6] == "convert-tensorrt"


@pytest.mark.parametrize(
    "task, parents",
    [
        ("prepare-dataset", {"validate-inputs"}),
        ("download-pretrained", {"validate-inputs"}),
        ("train", {"validate-inputs", "prepare-dataset", "download-pretrained"}),
        ("evaluate", {"validate-inputs", "train"}),
        ("prune", {"validate-inputs", "train"}),
        ("retrain", {"validate-inputs", "prepare-dataset", "prune"}),
        ("re-evaluate", {"validate-inputs", "retrain"}),
        ("inference", {"validate-inputs", "prepare-dataset", "retrain"}),
        ("export-fp32", {"validate-inputs", "retrain"}),
        ("export-int8", {"validate-inputs", "retrain"}),
        (
            "convert-tensorrt",
            # No dataset: --cal_image_dir is not passed (the TensorFile exists).
            {"validate-inputs", "export-int8", "export-fp32"},
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_step_waits_only_for_what_it_needs(task, parents):
    assert upstream(tasks()[task]) == parents


def test_validate_runs_first():
    assert upstream(tasks()["validate-inputs"]) == set()


def test_accelerator_requested_by_exactly_the_gpu_steps():
    executors = package()[0]["deploymentSpec"]["executors"]
    for name in STEP_KINDS:
        resources = executors[executor_of(name)]["container"].get("resources", {})
        assert ("accelerator" in resources) == (name in GPU_STEPS), name


def driver_task_input(pipeline_spec: dict, task_name: str, name: str) -> str:
    """Which run parameter feeds a task's component input ``name``."""
    task = pipeline_spec["root"]["dag"]["tasks"][task_name]
    return task["inputs"]["parameters"][name]["componentInputParameter"]


@pytest.mark.parametrize("arguments, expected", [({}, "1"), ({"num_gpus": "4"}, "4")])
def test_driver_gives_train_and_retrain_the_gpus_their_tao_gpus_flag_gets(arguments, expected):
    spec = package()[0]
    for name in ("train", "retrain"):
        assert driver_gpu_limit(spec, name, arguments) == expected, name
        # TAO's --gpus comes from the same run parameter (steps.train passes it on).
        assert driver_task_input(spec, name, "num_gpus") == "num_gpus"
    for name in GPU_STEPS - {"train", "retrain"}:
        assert driver_gpu_limit(spec, name, arguments) == "1", name


def test_driver_rule_sees_no_limit_for_a_numeric_count_parameter():
    """The rule above is not vacuous: the old form (an int parameter) resolves to no GPU."""
    from kfp import compiler as kfp_compiler
    from kfp import components, dsl

    step = components.load_component_from_text(
        "name: step\ninputs:\n- {name: n, type: Integer}\n"
        "implementation:\n  container:\n    image: busybox\n"
        "    command: [echo, {inputValue: n}]\n"
    )

    @dsl.pipeline(name="int-gpus")
    def numeric(n: int = 2):
        step(n=n).set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(n)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.yaml"
        kfp_compiler.Compiler().compile(numeric, str(out))
        spec = load_package(out)[0]
    assert driver_gpu_limit(spec, "step", {"n": 2}) == ""


def test_scheduling_and_shm_only_on_gpu_executors():
    platform = package()[1]
    for name in STEP_KINDS:
        config = platform[executor_of(name)]
        gpu = name in GPU_STEPS
        assert ("nodeSelector" in config) == gpu, name
        assert ("tolerations" in config) == gpu, name
        assert ("emptyDirMounts" in config) == gpu, name


def test_every_step_mounts_the_workspace_runs_as_the_workspace_user_and_has_a_deadline():
    env = compiler.route_environment(tf1.ROUTE)
    for name in STEP_KINDS:
        config = package()[1][executor_of(name)]
        assert config["pvcMount"][0]["constant"] == env.workspace.claim_name
        assert config["pvcMount"][0]["mountPath"] == env.workspace.mount_path
        assert config["securityContext"] == {"runAsUser": "1000", "runAsGroup": "1000"}
        assert int(config["activeDeadlineSeconds"]) > 0


def test_secrets_only_where_needed():
    for name in STEP_KINDS:
        config = package()[1][executor_of(name)]
        env_vars = {m["envVar"] for s in config.get("secretAsEnv", []) for m in s["keyToEnv"]}
        expected = {"TAO_MODEL_KEY"} if name in GPU_STEPS else set()
        if name == "download-pretrained":
            expected = {"NGC_CLI_API_KEY"}
        if name == "validate-inputs":  # checks that TAO's launcher can carry the key
            expected = {"TAO_MODEL_KEY"}
        assert env_vars == expected, name


def test_caching_disabled_on_every_step():
    for name, task in tasks().items():
        assert not task["cachingOptions"].get("enableCache", False), name


def test_images_match_the_step_kind():
    env = compiler.route_environment(tf1.ROUTE)
    executors = package()[0]["deploymentSpec"]["executors"]
    for name, kind in STEP_KINDS.items():
        image = executors[executor_of(name)]["container"]["image"]
        assert image == (env.images.tao if kind == "gpu" else env.images.tools), name


def test_nothing_is_pip_installed_at_run_time():
    text = TF1_PACKAGE.read_text()
    assert "pip install" not in text


def test_run_form_has_at_most_twelve_parameters_and_no_cluster_plumbing():
    parameters = package()[0]["root"]["inputDefinitions"]["parameters"]
    assert len(parameters) <= 12
    assert set(parameters) == {
        "dataset_path",
        "dataset_format",
        "pretrained_model",
        "epochs",
        "retrain_epochs",
        "batch_size",
        "learning_rate",
        "prune_threshold",
        "num_gpus",
        "spec_overrides",
        "base_spec",
    }
    for name, parameter in parameters.items():
        assert parameter.get("description"), f"run parameter {name} has no description"


def test_run_directory_is_per_run():
    inputs = tasks()["validate-inputs"]["inputs"]["parameters"]
    assert inputs["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    assert inputs["workspace"]["runtimeValue"]["constant"] == "/workspace"


def test_no_step_hard_codes_a_checkpoint_file_name():
    text = TF1_PACKAGE.read_text()
    assert not re.search(r"_\d{3}\.(tlt|hdf5)", text)


def test_final_model_is_a_pipeline_output():
    outputs = package()[0]["root"]["dag"]["outputs"]["artifacts"]
    (selector,) = [s for o in outputs.values() for s in o["artifactSelectors"]]
    assert selector == {"outputArtifactKey": "model", "producerSubtask": "retrain"}


def test_evaluate_publishes_metrics_and_confusion_matrix():
    components = package()[0]["components"]
    for task in ("evaluate", "re-evaluate"):
        component = components[tasks()[task]["componentRef"]["name"]]
        artifacts = component["outputDefinitions"]["artifacts"]
        types = {a["artifactType"]["schemaTitle"] for a in artifacts.values()}
        assert types == {"system.Metrics", "system.ClassificationMetrics"}


def test_display_names_are_the_task_keys():
    # KFP < 2.14 records tasks under their display name and finds producers by key
    # (kubeflow/pipelines 2.5.0 backend/src/v2/driver/driver.go:329, :1828-1830).
    assert {key: task["taskInfo"]["name"] for key, task in tasks().items()} == {
        key: key for key in tasks()
    }


def test_package_loads_as_a_kfp_component():
    from kfp import components

    loaded = components.load_component_from_file(str(TF1_PACKAGE))
    assert loaded.name == "tao-classification"


def test_compiled_yaml_parses_as_two_documents():
    docs = list(yaml.safe_load_all(TF1_PACKAGE.read_text()))
    assert len(docs) == 2


def test_tao_commands_are_set_on_gpu_steps_only():
    executors = package()[0]["deploymentSpec"]["executors"]
    for name, kind in STEP_KINDS.items():
        env = {
            v["name"]: v["value"] for v in executors[executor_of(name)]["container"].get("env", [])
        }
        expected = {
            "TAO_ENTRYPOINT": "classification",
            "TAO_CONVERTER": "converter",
            "TAO_DEPLOY_ENTRYPOINT": "classification_tf1",
            "TAO_VERSION": "3",
        }
        assert env == (expected if kind == "gpu" else {}), name
