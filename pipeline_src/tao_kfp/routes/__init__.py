"""The TAO routes, one module each, registered by the ``tao.version`` values they serve.

A route is everything that differs between TAO lines: the commands of its images, its spec
writer, the parsers of what its commands print or write, and its DAG (tasks, which run on a GPU,
which in the tao-deploy image, what the local report reads). Each route module declares a
:class:`Route` named ``ROUTE``; everything else (the run form's plumbing, the package rewriter,
the compiler, ``tao-kfp render``, local runs, the chart's upload) asks this registry. Adding a
route is adding its module and naming it in ``_MODULES``.

Route modules keep their top-level imports to the standard library and ``tao_kfp.names``: the
environment config imports this registry, and a route's DAG imports the environment config
(inside its ``pipeline`` function).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Dict, Mapping, Optional, Tuple

from tao_kfp.names import TAO_VERSION_ENV

# Route modules under tao_kfp.routes, in the order they are listed (docs, errors).
_MODULES = ("tf1", "pyt")


@dataclass(frozen=True)
class Commands:
    """The commands of one ``tao.version``: the chart's defaults for ``tao.*``."""

    entrypoint: str  # the training image's TAO command (TAO_ENTRYPOINT)
    deploy_entrypoint: str  # the tao-deploy image's command (TAO_DEPLOY_ENTRYPOINT)
    converter: str = "converter"  # TAO 3.x's TensorRT converter (TAO_CONVERTER)
    # Whether the route's deploy tasks run in images.taoDeploy (else in images.tao).
    deploy_image: bool = False


@dataclass(frozen=True)
class ReportKeys:
    """Where a local run's summary finds its figures: task names and the metric they log."""

    accuracy_before: str  # task whose top1_accuracy is "before compression"
    accuracy_after: str  # task whose top1_accuracy is "after compression"
    compression: str  # the compressing task, whose parameter_ratio is reported
    parameters_after: str  # the task whose "parameters" metric counts the compressed model
    # summary name -> (task, metric) of each model size shown
    sizes: Mapping[str, Tuple[str, str]] = field(default_factory=dict)
    label: str = "pruning"  # what the summary says the accuracies are before and after


@dataclass(frozen=True)
class Route:
    """One TAO route: what the rest of tao_kfp needs to know about it."""

    name: str  # module name under tao_kfp.routes
    title: str  # for docs and messages
    versions: Mapping[str, Commands]  # tao.version values served, with their commands
    pipeline_name: str  # pipelineInfo.name of the compiled package (identifies its route)
    package: str  # the compiled package, relative to the chart's files/
    step_kinds: Mapping[str, str]  # task name -> "cpu" | "gpu"
    deploy_tasks: Tuple[str, ...]  # tasks run in images.taoDeploy where Commands.deploy_image
    final_model_task: str  # the task whose "model" artifact is the pipeline's output
    report: ReportKeys
    # "module:function" returning the @dsl.pipeline function for an EnvironmentConfig.
    dag: str = ""
    # The spec the chart's workspace-init Job renders into <workspace>/specs/ (with
    # specs.overrides), relative to the chart's files/; the route's base_spec run parameter
    # reads it. Empty: step 1 writes every spec of a run, and none is read from the workspace.
    workspace_spec: str = ""

    def pipeline(self, env) -> Callable:
        """The ``@dsl.pipeline`` function of this route built for ``env``."""
        module, _, function = self.dag.partition(":")
        return getattr(importlib.import_module(module), function)(env)

    def uses_deploy_image(self, version: str, task: str) -> bool:
        """Whether ``task`` runs in images.taoDeploy under ``tao.version`` ``version``."""
        return task in self.deploy_tasks and self.versions[version].deploy_image


def step_version() -> str:
    """The ``tao.version`` a step image runs: ``TAO_VERSION``, set on every GPU step ("3" unset)."""
    return os.environ.get(TAO_VERSION_ENV) or "3"


def _load() -> Tuple[Route, ...]:
    routes = tuple(importlib.import_module(f"{__name__}.{name}").ROUTE for name in _MODULES)
    seen: Dict[str, str] = {}
    for route in routes:
        for version in route.versions:
            assert version not in seen, f"tao.version {version}: {seen[version]}, {route.name}"
            seen[version] = route.name
    return routes


ROUTES: Tuple[Route, ...] = _load()
# tao.version -> its route, and -> its commands.
BY_VERSION: Mapping[str, Route] = MappingProxyType(
    {version: route for route in ROUTES for version in route.versions}
)
VERSIONS: Tuple[str, ...] = tuple(BY_VERSION)


def route_for(version: str) -> Route:
    """The route serving ``tao.version`` ``version`` (ValueError naming the values otherwise)."""
    try:
        return BY_VERSION[str(version)]
    except KeyError:
        raise ValueError(
            f"tao.version {version!r} is not a TAO route here; use one of {', '.join(VERSIONS)}"
        ) from None


def commands_for(version: str) -> Commands:
    """The commands of ``tao.version`` ``version``."""
    return route_for(version).versions[str(version)]


def route_of_package(pipeline_spec: Mapping) -> Optional[Route]:
    """The route a compiled package belongs to (by its pipelineInfo.name), None if unknown."""
    name = pipeline_spec.get("pipelineInfo", {}).get("name")
    return next((route for route in ROUTES if route.pipeline_name == name), None)
