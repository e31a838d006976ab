"""Questions tests ask of a compiled package's documents."""

from __future__ import annotations

import re
from typing import List


def platform_configs(docs: List[dict]) -> List[dict]:
    platform = next(doc for doc in docs[1:] if "platforms" in doc)
    return list(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values())


def has_security_context(docs: List[dict]) -> bool:
    return any("securityContext" in config for config in platform_configs(docs))


def has_optional_secrets(docs: List[dict]) -> bool:
    return any(
        "optional" in secret
        for config in platform_configs(docs)
        for secret in config.get("secretAsEnv", [])
    )


def upstream(task: dict) -> set:
    """Producers a task waits for: dependentTasks plus every data dependency."""
    found = set(task.get("dependentTasks", []))
    for kind in ("parameters", "artifacts"):
        for value in task.get("inputs", {}).get(kind, {}).values():
            for key in ("taskOutputParameter", "taskOutputArtifact"):
                if key in value:
                    found.add(value[key]["producerTask"])
    return found


def longest_chain(pipeline_spec: dict) -> list:
    """The longest chain of tasks, each waiting for the one before it."""
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    graph = {name: upstream(task) for name, task in tasks.items()}
    memo: dict = {}

    def chain(name):
        if name not in memo:
            best = max((chain(parent) for parent in graph[name]), key=len, default=[])
            memo[name] = best + [name]
        return memo[name]

    return max((chain(name) for name in graph), key=len)


# How KFP's driver turns `accelerator.resourceCount` into the pod's GPU limit: a placeholder
# {{$.inputs.parameters['x']}} is replaced by the task input's value read with
# GetStringValue() (kubeflow/pipelines backend/src/v2/driver/resolve.go:818-831), and an empty
# result sets no limit at all (driver.go:427-447). The API server types each run argument by the
# root input's parameterType: STRING gives a string Value, NUMBER_* a number Value, whose
# GetStringValue() is "". This function follows those rules on the compiled package.
_PARAMETER_PLACEHOLDER = re.compile(r"^\{\{\$\.inputs\.parameters\['(?P<name>[^']+)'\]\}\}$")


def driver_gpu_limit(pipeline_spec: dict, task_name: str, arguments: dict) -> str:
    """The GPU limit KFP's driver would set on ``task_name``'s pod ("" = none)."""
    task = pipeline_spec["root"]["dag"]["tasks"][task_name]
    component = pipeline_spec["components"][task["componentRef"]["name"]]
    executor = pipeline_spec["deploymentSpec"]["executors"][component["executorLabel"]]
    count = executor["container"]["resources"]["accelerator"]["resourceCount"]
    placeholder = _PARAMETER_PLACEHOLDER.match(count)
    if not placeholder:
        return count
    source = task["inputs"]["parameters"][placeholder["name"]]
    root_input = source["componentInputParameter"]
    definition = pipeline_spec["root"]["inputDefinitions"]["parameters"][root_input]
    value = arguments.get(root_input, definition.get("defaultValue"))
    return str(value) if definition["parameterType"] == "STRING" else ""
