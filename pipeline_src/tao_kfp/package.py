"""The compiled pipeline package: read it, check its shape, rewrite it per environment and backend.

The one place that handles a compiled package (one per route in ``files/pipelines``):
the chart's upload Job (tao_kfp.upload), ``tao-kfp render`` (tao_kfp.render) and local runs
(tao_kfp.local_run) all read, adapt and write it through these functions.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from tao_kfp.environment import EnvironmentConfig, Toleration, step_image, tao_env_variables
from tao_kfp.kfp_backends import KfpBackend, adapt_for_backend
from tao_kfp.names import (
    MODEL_KEY_ENV,
    NGC_API_KEY_ENV,
    NUM_GPUS_PARAMETER,
    SHM_MOUNT_PATH,
    VALIDATE_TASK,
)
from tao_kfp.routes import route_for, route_of_package


class PackageError(ValueError):
    """A package file that is missing, unreadable or not a compiled KFP pipeline; names it."""


def read_package(path: str | Path, flag: str = "--package") -> Tuple[str, List[dict]]:
    """Returns (text, documents) of a compiled KFP v2 package; ``PackageError`` otherwise.

    The documents are the pipeline spec, then the platform spec (if any). ``flag`` is how the
    caller's user named the file, quoted in every message.
    """
    path = Path(path)
    if not path.is_file():
        raise PackageError(f"{flag} {path}: no such file (compile it with `tao-kfp compile`)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PackageError(
            f"{flag} {path} is not text (byte {error.start} is not UTF-8): pass the YAML "
            "that `tao-kfp compile` writes, not an archive or a binary file"
        ) from error
    except OSError as error:
        raise PackageError(f"{flag} {path}: {error.strerror}") from error
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise PackageError(f"{flag} {path} is not valid YAML: {reason}") from error
    first = docs[0] if docs else None
    required = ("pipelineInfo", "deploymentSpec", "root")
    if not isinstance(first, dict) or not all(key in first for key in required):
        found = "is empty" if first is None else "has no pipelineInfo, deploymentSpec and root"
        raise PackageError(
            f"{flag} {path} is not a compiled KFP pipeline (its first YAML document "
            f"{found}); pass the YAML that `tao-kfp compile` writes."
        )
    return text, docs


def load_package(path: str | Path) -> List[dict]:
    """The documents of a compiled package (see :func:`read_package`)."""
    return read_package(path)[1]


def dump_package(docs: List[dict]) -> str:
    """Writes documents as multi-document YAML that KFP (and load_component_from_file) reads."""
    return yaml.safe_dump_all(docs, sort_keys=True, width=100)


def _constant(value: str) -> dict:
    return {"runtimeValue": {"constant": value}}


def _is_gpu_executor(executor: dict) -> bool:
    # GPU steps are exactly the ones requesting an accelerator (tests pin this down).
    return "accelerator" in executor.get("container", {}).get("resources", {})


def _adapt_container(container: dict, env: EnvironmentConfig, gpu: bool, deploy: bool) -> None:
    container["image"] = step_image(env, gpu, deploy)
    if not gpu:
        return
    values = tao_env_variables(env)
    for variable in container.get("env", []):
        if variable["name"] in values:
            variable["value"] = values[variable["name"]]
    accelerator = container["resources"]["accelerator"]
    accelerator["resourceType"] = accelerator["type"] = env.gpu.resource


def _toleration(toleration: Toleration) -> dict:
    rendered = {
        "key": toleration.key,
        "operator": toleration.operator,
        "value": toleration.value,
        "effect": toleration.effect,
        "tolerationSeconds": None
        if toleration.toleration_seconds is None
        else str(toleration.toleration_seconds),
    }
    return {k: v for k, v in rendered.items() if v is not None}


def _adapt_platform_executor(config: dict, env: EnvironmentConfig, gpu: bool) -> None:
    config["imagePullPolicy"] = env.images.pull_policy
    pull_secrets = [
        {"secretName": name, "secretNameParameter": _constant(name)}
        for name in env.secrets.image_pull_secrets
    ]
    _set_or_drop(config, "imagePullSecret", pull_secrets)
    for mount in config.get("pvcMount", []):
        mount["constant"] = env.workspace.claim_name
        mount["pvcNameParameter"] = _constant(env.workspace.claim_name)
        mount["mountPath"] = env.workspace.mount_path
    refs = {
        NGC_API_KEY_ENV: env.secrets.ngc_api_key,
        MODEL_KEY_ENV: env.secrets.model_key,
    }
    for secret in config.get("secretAsEnv", []):
        for mapping in secret["keyToEnv"]:
            ref = refs.get(mapping["envVar"])
            if ref is not None:
                mapping["secretKey"] = ref.key
                secret["secretName"] = ref.name
                secret["secretNameParameter"] = _constant(ref.name)
    seconds = env.timeouts.gpu_step_seconds if gpu else env.timeouts.cpu_step_seconds
    config["activeDeadlineSeconds"] = str(seconds)
    config["securityContext"] = {
        "runAsUser": str(env.workspace.run_as_user),
        "runAsGroup": str(env.workspace.run_as_group),
    }
    if not gpu:
        return
    _set_or_drop(
        config,
        "nodeSelector",
        {"labels": dict(env.gpu.node_selector)} if env.gpu.node_selector else None,
    )
    _set_or_drop(config, "tolerations", [_toleration(t) for t in env.gpu.tolerations])
    for mount in config.get("emptyDirMounts", []):
        if mount["mountPath"] == SHM_MOUNT_PATH:
            mount["sizeLimit"] = env.gpu.shm_size


def _set_or_drop(config: dict, key: str, value) -> None:
    if value:
        config[key] = value
    else:
        config.pop(key, None)


def adapt_package(
    docs: List[dict], env: EnvironmentConfig, *, backend: Optional[KfpBackend] = None
) -> List[dict]:
    """Rewrites a compiled pipeline package for ``env``; the input is left unchanged.

    The one code path that turns the shipped package (compiled with the default config) into
    the package for a cluster: images (the deploy steps' follow tao.version) and pull
    policy, workspace claim and mount path,
    Secret names and keys, pull secrets, GPU resource, the run form's num_gpus default, node
    selector, tolerations, /dev/shm size, timeouts, security context, TAO commands, and the
    workspace and TAO version constants given to step 1. A test proves the result equals
    compiling ``make_pipeline(env)``.

    Args:
        docs: Documents from :func:`load_package`: pipeline spec, then platform spec.
        env: The target environment.
        backend: The KFP backend that will run it; fields it cannot take are dropped
            (see :func:`adapt_for_backend`). None: a backend that takes everything.

    Returns:
        New documents for ``env``.

    Raises:
        PackageError: The package is another route's than tao.version's.
    """
    docs = copy.deepcopy(docs)
    pipeline_spec = docs[0]
    route = route_for(env.tao.version)
    if route_of_package(pipeline_spec) is not route:
        name = pipeline_spec.get("pipelineInfo", {}).get("name")
        raise PackageError(
            f"the package is pipeline {name!r}, not the {route.title} route that tao.version "
            f"{env.tao.version} selects: use files/{route.package}"
        )
    executors = pipeline_spec["deploymentSpec"]["executors"]
    gpu_labels = {label for label, ex in executors.items() if _is_gpu_executor(ex)}
    root = pipeline_spec["root"]
    deploy_labels = {
        pipeline_spec["components"][root["dag"]["tasks"][task]["componentRef"]["name"]][
            "executorLabel"
        ]
        for task in route.deploy_tasks
    }
    for label, executor in executors.items():
        _adapt_container(executor["container"], env, label in gpu_labels, label in deploy_labels)

    root["inputDefinitions"]["parameters"][NUM_GPUS_PARAMETER]["defaultValue"] = str(env.gpu.count)
    step_one = root["dag"]["tasks"][VALIDATE_TASK]["inputs"]["parameters"]
    step_one["workspace"] = _constant(env.workspace.mount_path)
    step_one["tao_version"] = _constant(env.tao.version)

    platform = next((doc for doc in docs[1:] if "platforms" in doc), None)
    if platform is not None:
        platform_executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for label, config in platform_executors.items():
            _adapt_platform_executor(config, env, label in gpu_labels)
    if backend is not None:
        docs, _ = adapt_for_backend(docs, backend)
    return docs
