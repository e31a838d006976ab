"""adapt_package: the one rewrite path agrees with compiling for the environment.

Most cases run on the TF1 route's package (its non-default config is a TAO 5 install); the
default install's package (current TAO's route) gets the same equality checks at the end."""

from __future__ import annotations

from functools import cache

import pytest
import yaml

from tao_kfp import compiler
from tao_kfp.environment import EnvironmentConfig
from tao_kfp.package import adapt_package, dump_package, load_package
from tao_kfp.routes import pyt, tf1
from tao_kfp.routes.tf1 import STEP_KINDS

SENTINEL = "s3ntinel-VALUE-do-not-leak-9f2c"

NON_DEFAULT = {
    "images": {
        "tao": "registry.example.com/ml/tao-step:5.0.0",
        "taoDeploy": "registry.example.com/ml/tao-deploy-step:5.0.0",
        "tools": "registry.example.com/ml/tools:5.0.0",
        "pullPolicy": "Always",
    },
    "workspace": {
        "claimName": "team-a-data",
        "mountPath": "/mnt/team-a",
        "runAsUser": 2001,
        "runAsGroup": 3001,
    },
    "secrets": {
        "ngcApiKey": {"name": "ngc-credentials", "key": "api-key"},
        "modelKey": {"name": "tao-model", "key": "model-key"},
        "imagePullSecrets": ["nvcr-pull", "internal-pull"],
    },
    "gpu": {
        "resource": "nvidia.com/mig-1g.10gb",
        "count": 2,
        "nodeSelector": {"pool": "a100-mig", "topology.kubernetes.io/zone": "z1"},
        "tolerations": [
            {
                "key": "dedicated",
                "operator": "Equal",
                "value": "ml",
                "effect": "NoExecute",
                "tolerationSeconds": 120,
            },
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ],
        "shmSize": "4Gi",
    },
    "tao": {
        "entrypoint": "classification_tf1",
        "converter": "tao-converter",
        "deployEntrypoint": "tao-deploy-classification",
        "version": "5",
    },
    "timeouts": {"cpuStepSeconds": 900, "gpuStepSeconds": 36000},
}


def tf1_env() -> EnvironmentConfig:
    """The default config on the TF1 route (tao.version 3): what its package is compiled for."""
    return compiler.route_environment(tf1.ROUTE)


@cache
def compiled(env_json: str = "") -> str:
    """The TF1 package compiled for ``env_json`` (default: :func:`tf1_env`)."""
    env = EnvironmentConfig.model_validate_json(env_json) if env_json else tf1_env()
    return compiler.compile_to_text(env)


def non_default_env() -> EnvironmentConfig:
    return EnvironmentConfig.model_validate(NON_DEFAULT)


def parse(text: str) -> list:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def platform_executors(docs: list) -> dict:
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def executor_label(docs: list, task: str) -> str:
    component = docs[0]["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    return docs[0]["components"][component]["executorLabel"]


def test_adapting_the_default_package_equals_compiling_for_the_environment():
    env = non_default_env()
    adapted = adapt_package(parse(compiled()), env)
    assert adapted == parse(compiled(env.model_dump_json()))


def test_adapting_with_the_default_config_changes_nothing():
    docs = parse(compiled())
    assert adapt_package(docs, tf1_env()) == docs
    default = load_package(compiler.DEFAULT_OUTPUT)
    assert adapt_package(default, EnvironmentConfig()) == default


def test_adapt_does_not_modify_its_input():
    docs = parse(compiled())
    before = yaml.safe_dump_all(docs)
    adapt_package(docs, non_default_env())
    assert yaml.safe_dump_all(docs) == before


def test_empty_scheduling_settings_drop_the_keys():
    env = EnvironmentConfig.model_validate(
        {
            "gpu": {"nodeSelector": {}, "tolerations": []},
            "secrets": {"imagePullSecrets": []},
            "tao": {"version": "3"},
        }
    )
    adapted = adapt_package(parse(compiled()), env)
    assert adapted == parse(compiled(env.model_dump_json()))
    for config in platform_executors(adapted).values():
        assert not {"nodeSelector", "tolerations", "imagePullSecret"} & set(config)


@pytest.fixture(scope="module")
def adapted_non_default() -> list:
    return adapt_package(parse(compiled()), non_default_env())


def test_non_default_values_reach_the_gpu_platform_spec(adapted_non_default):
    config = platform_executors(adapted_non_default)[executor_label(adapted_non_default, "train")]
    assert config["nodeSelector"] == {
        "labels": {"pool": "a100-mig", "topology.kubernetes.io/zone": "z1"}
    }
    assert config["tolerations"] == [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "ml",
            "effect": "NoExecute",
            "tolerationSeconds": "120",
        },
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert config["pvcMount"] == [
        {
            "constant": "team-a-data",
            "mountPath": "/mnt/team-a",
            "pvcNameParameter": {"runtimeValue": {"constant": "team-a-data"}},
        }
    ]
    assert config["secretAsEnv"][0]["secretName"] == "tao-model"
    assert config["secretAsEnv"][0]["keyToEnv"] == [
        {"envVar": "TAO_MODEL_KEY", "secretKey": "model-key"}
    ]
    assert [s["secretName"] for s in config["imagePullSecret"]] == ["nvcr-pull", "internal-pull"]
    assert config["imagePullPolicy"] == "Always"
    assert config["emptyDirMounts"][0]["sizeLimit"] == "4Gi"
    assert config["activeDeadlineSeconds"] == "36000"
    assert config["securityContext"] == {"runAsUser": "2001", "runAsGroup": "3001"}


def test_non_default_values_reach_the_cpu_platform_spec(adapted_non_default):
    label = executor_label(adapted_non_default, "download-pretrained")
    config = platform_executors(adapted_non_default)[label]
    assert config["secretAsEnv"][0]["secretName"] == "ngc-credentials"
    assert config["secretAsEnv"][0]["keyToEnv"] == [
        {"envVar": "NGC_CLI_API_KEY", "secretKey": "api-key"}
    ]
    assert config["activeDeadlineSeconds"] == "900"
    assert "nodeSelector" not in config and "tolerations" not in config


def test_non_default_values_reach_the_pipeline_spec(adapted_non_default):
    spec = adapted_non_default[0]
    executors = spec["deploymentSpec"]["executors"]
    for task, kind in STEP_KINDS.items():
        container = executors[executor_label(adapted_non_default, task)]["container"]
        if kind == "gpu":
            # TAO 5.x: only the engine step runs in the tao-deploy image (gen_trt_engine).
            image = "tao-deploy-step" if task == "convert-tensorrt" else "tao-step"
            assert container["image"] == f"registry.example.com/ml/{image}:5.0.0", task
            assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/mig-1g.10gb"
            assert {"name": "TAO_ENTRYPOINT", "value": "classification_tf1"} in container["env"]
            assert {"name": "TAO_CONVERTER", "value": "tao-converter"} in container["env"]
            deploy = {"name": "TAO_DEPLOY_ENTRYPOINT", "value": "tao-deploy-classification"}
            assert (
                deploy in container["env"]
                and {"name": "TAO_VERSION", "value": "5"} in (container["env"])
            )
        else:
            assert container["image"] == "registry.example.com/ml/tools:5.0.0"
            assert "resources" not in container
    assert spec["root"]["inputDefinitions"]["parameters"]["num_gpus"]["defaultValue"] == "2"
    step_one = spec["root"]["dag"]["tasks"]["validate-inputs"]["inputs"]["parameters"]
    assert step_one["workspace"]["runtimeValue"]["constant"] == "/mnt/team-a"
    assert step_one["tao_version"]["runtimeValue"]["constant"] == "5"


def test_tao3_keeps_every_gpu_step_in_the_tao_image():
    env = EnvironmentConfig.model_validate({**NON_DEFAULT, "tao": {"version": "3"}})
    docs = adapt_package(parse(compiled()), env)
    executors = docs[0]["deploymentSpec"]["executors"]
    for task, kind in STEP_KINDS.items():
        if kind == "gpu":
            image = executors[executor_label(docs, task)]["container"]["image"]
            assert image == "registry.example.com/ml/tao-step:5.0.0", task


@pytest.mark.parametrize(
    "tao, expected",
    [
        ({"version": "3", "entrypoint": "classification_tf1"}, "set tao.version=5"),
        ({"version": "5", "entrypoint": "classification"}, "set tao.version=3"),
        ({"version": "5", "entrypoint": "/usr/local/bin/classification"}, "set tao.version=3"),
        ({"version": "4", "entrypoint": "classification_tf1"}, "tao.version 4 is not supported"),
        ({"version": "5", "entrypoint": "python -m tao_kfp.cpu_backend"}, "--tao-version 5"),
        # The CPU backend plays only the TF1 routes: version 6 is NVIDIA's code (make demo-tao).
        ({"version": "6", "entrypoint": "python -m tao_kfp.cpu_backend"}, "make demo-tao"),
        (
            {"version": "6", "entrypoint": "python -m tao_kfp.cpu_backend --tao-version 6"},
            "plays only TAO 3 and 5",
        ),
    ],
)
def test_inconsistent_tao_version_is_refused(tao, expected):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=expected.replace(".", r"\.")):
        EnvironmentConfig.model_validate({"tao": tao})


def test_consistent_tao_versions_are_accepted():
    for tao in (
        {"version": "3", "entrypoint": "classification"},
        {"version": "5", "entrypoint": "classification_tf1"},
        {"version": "5", "entrypoint": "python -m tao_kfp.cpu_backend --tao-version 5"},
        {"version": 5, "entrypoint": "/opt/site/run-tao"},
    ):
        assert EnvironmentConfig.model_validate({"tao": tao}).tao.version == str(tao["version"])


def test_render_cli_writes_the_adapted_package(tmp_path, capsys):
    from tao_kfp.cli import main

    config = tmp_path / "env.yaml"
    config.write_text(non_default_env().to_yaml())
    out = tmp_path / "pipeline.yaml"
    assert main(["render", "--config", str(config), "--out", str(out)]) == 0
    assert load_package(out) == adapt_package(parse(compiled()), non_default_env())
    assert main(["render", "--config", str(config)]) == 0
    assert "registry.example.com/ml/tao-step:5.0.0" in capsys.readouterr().out


def test_render_cli_rejects_an_invalid_config(tmp_path, capsys):
    from tao_kfp.cli import main

    config = tmp_path / "env.yaml"
    config.write_text("gpu:\n  resource: not a resource\n")
    assert main(["render", "--config", str(config), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "gpu.resource" in capsys.readouterr().err


def test_dump_and_load_round_trip(tmp_path):
    docs = parse(compiled())
    path = tmp_path / "p.yaml"
    path.write_text(dump_package(docs))
    assert load_package(path) == docs


def test_secret_values_never_reach_the_package(monkeypatch, tmp_path):
    # Secret values sit in the environment of the compiling process; the config only names them.
    monkeypatch.setenv("NGC_CLI_API_KEY", SENTINEL)
    monkeypatch.setenv("TAO_MODEL_KEY", SENTINEL)
    env = EnvironmentConfig.model_validate(
        {
            **NON_DEFAULT,
            "secrets": {
                "ngcApiKey": {"name": "ngc-credentials", "key": "api-key"},
                "modelKey": {"name": "tao-model", "key": "model-key"},
            },
        }
    )
    fresh = compiler.compile_to_text(env)
    adapted = dump_package(adapt_package(parse(compiled()), env))
    for text in (fresh, adapted):
        assert SENTINEL not in text
        docs = parse(text)
        for executor in docs[0]["deploymentSpec"]["executors"].values():
            container = executor["container"]
            words = container.get("command", []) + container.get("args", [])
            words += [v["value"] for v in container.get("env", [])]
            assert not any(SENTINEL in word for word in words)
        assert "TAO_MODEL_KEY" in text  # referenced by name only


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing-config", "no-such-env.yaml"),
        ("config-is-a-folder", "--config"),
        ("config-not-yaml", "bad.yaml"),
        ("config-empty", "empty.yaml"),
        ("missing-package", "no-such-pipeline.yaml"),
        ("package-not-a-pipeline", "not a compiled KFP pipeline"),
        ("out-in-missing-folder", "no-such-dir"),
    ],
)
def test_render_cli_bad_paths_give_one_line_not_a_traceback(tmp_path, capsys, case, expected):
    from tao_kfp.cli import main

    config = tmp_path / "env.yaml"
    config.write_text(non_default_env().to_yaml())
    args = {"--config": str(config), "--out": str(tmp_path / "out.yaml")}
    if case == "missing-config":
        args["--config"] = str(tmp_path / "no-such-env.yaml")
    elif case == "config-is-a-folder":
        args["--config"] = str(tmp_path)
    elif case == "config-not-yaml":
        (tmp_path / "bad.yaml").write_text("gpu: [\n")
        args["--config"] = str(tmp_path / "bad.yaml")
    elif case == "config-empty":
        (tmp_path / "empty.yaml").write_text("")
        args["--config"] = str(tmp_path / "empty.yaml")
    elif case == "missing-package":
        args["--package"] = str(tmp_path / "no-such-pipeline.yaml")
    elif case == "package-not-a-pipeline":
        args["--package"] = str(config)
    elif case == "out-in-missing-folder":
        args["--out"] = str(tmp_path / "no-such-dir" / "out.yaml")
    assert main(["render", *[part for item in args.items() for part in item]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tao-kfp render: ") and expected in err
    assert "Traceback" not in err and err.count(expected) == 1


def test_adapting_the_default_installs_package_equals_compiling_for_the_environment():
    """The same equality on current TAO's route, the default install (tao.version 6)."""
    tao = {
        "version": "6",
        "entrypoint": "classification_pyt",
        "deployEntrypoint": "classification_pyt",
    }
    env = EnvironmentConfig.model_validate({**NON_DEFAULT, "tao": tao})
    assert compiler.DEFAULT_ROUTE is pyt.ROUTE
    adapted = adapt_package(load_package(compiler.DEFAULT_OUTPUT), env)
    assert adapted == parse(compiler.compile_to_text(env))
    images = {
        task: adapted[0]["deploymentSpec"]["executors"][executor_label(adapted, task)]["container"][
            "image"
        ]
        for task in pyt.STEP_KINDS
    }
    assert (
        images["gen-trt-engine"] == images["evaluate-engine"] == NON_DEFAULT["images"]["taoDeploy"]
    )
    assert images["train"] == NON_DEFAULT["images"]["tao"]
