"""The environment config: everything about a cluster that the pipeline needs but a run does not.

One typed model with defaults. The shipped pipeline is compiled with the defaults;
``tao_kfp.package.adapt_package`` is the single code path that rewrites a compiled package for
another environment (used by the chart's upload Job, by ``tao-kfp render`` and by local runs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tao_kfp import __version__, routes, value_rules
from tao_kfp.names import (
    TAO_CONVERTER_ENV,
    TAO_DEPLOY_ENTRYPOINT_ENV,
    TAO_ENTRYPOINT_ENV,
    TAO_VERSION_ENV,
)

# Validation rules shared with the chart: values.schema.json uses these exact patterns and
# templates/_validate.tpl the NVIDIA names and toleration rules (tests/chart/test_rule_parity.py
# holds both to them). Mount paths are checked by the chart only: local runs mount host paths.
# Kubernetes' own rules: k8s.io/apimachinery/pkg/util/validation/validation.go
# (IsDNS1123Label, IsQualifiedName, IsValidLabelValue) and pkg/apis/core/validation (tolerations).
# Extended resource names: <domain with a dot>/<name>, e.g. nvidia.com/mig-1g.10gb.
GPU_RESOURCE_PATTERN = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+"
    r"/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
# What NVIDIA's device plugin advertises: whole GPUs, shared (time-sliced) GPUs, MIG slices.
NVIDIA_RESOURCE_PATTERN = r"^nvidia\.com/(gpu|gpu\.shared|mig-([1-7]c\.)?[1-8]g\.[0-9]+gb(\+me)?)$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# A positive size: no "m" suffix (thousandths of a byte), no zero.
QUANTITY_PATTERN = (
    r"^([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
)

DEFAULT_IMAGE_REPOSITORY = "localhost:5000/tao-kfp"


class _Model(BaseModel):
    """Base for config sections: camelCase in YAML (as in values.yaml), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Images(_Model):
    """Container images of the pipeline's steps (see images/)."""

    tao: str = Field(
        default=f"{DEFAULT_IMAGE_REPOSITORY}/tao-step:{__version__}",
        description="TAO-based image for GPU steps: TAO plus an isolated Python with this package",
    )
    tools: str = Field(
        default=f"{DEFAULT_IMAGE_REPOSITORY}/tools:{__version__}",
        description="Small Python image for CPU steps",
    )
    tao_deploy: str = Field(
        default=f"{DEFAULT_IMAGE_REPOSITORY}/tao-deploy-step:{__version__}",
        description="TAO 5.x deploy image (tao-deploy plus the step Python): the engine step "
        "only, and only when tao.version is 5",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    @field_validator("tao", "tools", "tao_deploy")
    @classmethod
    def _image_reference(cls, value: str, info) -> str:
        # One rule for every image, the chart's (values.schema.json definitions.image).
        key = "images." + to_camel(info.field_name)
        problems = value_rules.image_reference_problems(key, value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


class Workspace(_Model):
    """The shared workspace volume (datasets, pretrained models, specs, experiments)."""

    # KFP's driver names the pod volume after the claim: a DNS-1123 label.
    claim_name: str = Field(default="tao-kfp-workspace", pattern=DNS_LABEL_PATTERN, max_length=63)
    mount_path: str = "/workspace"
    # One UID/GID for every pod that writes the workspace, so files stay writable on NFS.
    run_as_user: int = Field(default=1000, ge=1)
    run_as_group: int = Field(default=1000, ge=1)

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        # Lenient on purpose: local runs (kfp.local) mount a host directory here, such as
        # .demo/workspace; the chart's schema and _validate.tpl hold in-pod paths to more.
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError(
                f"workspace.mountPath must be an absolute path other than '/', got {value!r}"
            )
        return value.rstrip("/")


class SecretKeyRef(_Model):
    """A key of a Kubernetes Secret, exposed to steps as an environment variable."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(pattern=value_rules.SECRET_KEY_PATTERN, max_length=253)


class Secrets(_Model):
    """Where the NGC credentials live. Values never enter the pipeline, only references."""

    ngc_api_key: SecretKeyRef = SecretKeyRef(name="tao-kfp-ngc", key="NGC_API_KEY")
    model_key: SecretKeyRef = SecretKeyRef(name="tao-kfp-ngc", key="TAO_MODEL_KEY")
    image_pull_secrets: List[str] = ["tao-kfp-nvcr"]


class Toleration(_Model):
    """A pod toleration (same fields as Kubernetes)."""

    key: Optional[str] = Field(default=None, pattern=LABEL_KEY_PATTERN)
    # Kubernetes defaults an omitted operator to Equal (core/v1 Toleration), and so does the chart.
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Optional[str] = Field(default=None, pattern=LABEL_VALUE_PATTERN)
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    toleration_seconds: Optional[int] = None

    @model_validator(mode="after")
    def _kubernetes_rules(self) -> Toleration:
        # The chart applies the same three rules (templates/_validate.tpl); Kubernetes refuses
        # the last two (pkg/apis/core/validation ValidateTolerations), the first tolerates all.
        if not self.key:
            raise ValueError("a toleration without a key tolerates every taint: name the taint key")
        if self.operator == "Exists" and self.value:
            raise ValueError(
                f"operator Exists with value {self.value}: drop the value or use Equal"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds needs effect NoExecute")
        return self


class Gpu(_Model):
    """How GPU steps are scheduled. Applies to GPU steps only."""

    resource: str = Field(default="nvidia.com/gpu", pattern=GPU_RESOURCE_PATTERN)
    # Default of the run form's num_gpus: the GPUs of train and retrain, whose TAO --gpus
    # equals the pod's limit. Every other GPU step takes 1 (TAO runs only train multi-GPU).
    count: int = Field(default=1, ge=1, le=16)
    node_selector: Dict[
        Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)],
        Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)],
    ] = {"nvidia.com/gpu.present": "true"}
    tolerations: List[Toleration] = [
        Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    ]
    # TAO's data loaders use shared memory; the container default of 64Mi kills training.
    shm_size: str = Field(default="16Gi", pattern=QUANTITY_PATTERN)

    @field_validator("resource")
    @classmethod
    def _known_nvidia_resource(cls, value: str) -> str:
        if "kubernetes.io/" in value:
            raise ValueError(
                f"gpu.resource={value} is in the kubernetes.io domain, reserved for native "
                "resources: extended resources such as nvidia.com/gpu live in a vendor domain"
            )
        if value.startswith("nvidia.com/") and not re.match(NVIDIA_RESOURCE_PATTERN, value):
            raise ValueError(
                f"gpu.resource={value} is not a resource NVIDIA's device plugin advertises: use "
                "nvidia.com/gpu or a MIG slice such as nvidia.com/mig-1g.10gb"
            )
        return value


CPU_BACKEND_MODULE = "tao_kfp.cpu_backend"


class Tao(_Model):
    """How TAO is invoked inside the step images; ``version`` selects the route (tao_kfp.routes).

    A command left out takes the default of ``version``'s route (routes.Commands), so
    ``version`` alone selects a route with its own commands.
    """

    # 3.x: "classification"; 5.x: "classification_tf1"; 6.x: "classification_pyt".
    # May be a multi-word command.
    entrypoint: str = ""
    # 3.x only: builds the TensorRT engine from the INT8 .etlt export.
    converter: str = ""
    # The command of the tao-deploy image (images.taoDeploy) where the route uses one.
    deploy_entrypoint: str = ""
    # Selects the route and its version-dependent file names and flags; the chart's default is
    # current TAO's PyTorch route (values.yaml tao.version).
    version: str = "6"

    @field_validator("version", mode="before")
    @classmethod
    def _supported(cls, value):
        if str(value) == "4":
            raise ValueError(
                "tao.version 4 is not supported: TAO 4.x's checkpoint format and prune flags are "
                "unverified. Use a TAO 3.x image (version 3) or a 5.x image (version 5)."
            )
        if str(value) not in routes.VERSIONS:
            raise ValueError(
                f"tao.version {value!r} is not a TAO route here: use one of "
                f"{', '.join(routes.VERSIONS)}"
            )
        return str(value)

    @model_validator(mode="after")
    def _consistent(self) -> Tao:
        defaults = routes.commands_for(self.version)
        self.entrypoint = self.entrypoint or defaults.entrypoint
        self.converter = self.converter or defaults.converter
        self.deploy_entrypoint = self.deploy_entrypoint or defaults.deploy_entrypoint
        problems = version_problems(self.version, self.entrypoint)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def tao_commands() -> Dict[str, str]:
    """tao.version -> the TAO command of its training image (the routes' declarations)."""
    return {version: routes.commands_for(version).entrypoint for version in routes.VERSIONS}


def version_problems(version: str, entrypoint: str) -> List[str]:
    """Why ``entrypoint`` cannot be TAO ``version``'s command ([] when they agree).

    A TAO command name (``classification``/``classification_tf1``/``classification_pyt``)
    anywhere in the command must be the version's own, unless both versions share it; the CPU
    backend's ``--tao-version`` must equal it. Other commands (site wrappers) are not judged.
    """
    import shlex

    words = shlex.split(entrypoint)
    names = {word.rsplit("/", 1)[-1] for word in words}
    commands = tao_commands()
    expected = commands[version]
    problems = []
    for other_version, command in commands.items():
        if command in names and command != expected:
            problems.append(
                f"tao.entrypoint {entrypoint!r} is TAO {other_version}'s command but tao.version "
                f"is {version}: set tao.version={other_version}, or tao.entrypoint={expected}"
            )
    if CPU_BACKEND_MODULE in words:
        from tao_kfp.cpu_backend.common import TAO_VERSIONS as CPU_BACKEND_VERSIONS

        flag = words[words.index("--tao-version") + 1] if "--tao-version" in words[:-1] else "3"
        if version not in CPU_BACKEND_VERSIONS:
            problems.append(
                f"tao.entrypoint runs the CPU backend, which plays only TAO "
                f"{' and '.join(CPU_BACKEND_VERSIONS)} (the TF1 routes), but tao.version is "
                f"{version}: its route runs NVIDIA's own {expected} (on a CPU: make demo-tao, or "
                f"tao-kfp run-local --tao-version {version} with the envs of make tao-env); "
                f"set tao.entrypoint={expected}, or tao.version to one the backend plays"
            )
        elif flag != version:
            problems.append(
                f"tao.entrypoint runs the CPU backend as TAO {flag} but tao.version is {version}: "
                f"add --tao-version {version} to the command"
            )
    return problems


class Timeouts(_Model):
    """Pod deadlines, so a hung step frees its GPU."""

    cpu_step_seconds: int = Field(default=2 * 3600, ge=60)
    gpu_step_seconds: int = Field(default=3 * 24 * 3600, ge=60)


class EnvironmentConfig(_Model):
    """Everything cluster-specific. Defaults describe the chart's default install."""

    images: Images = Images()
    workspace: Workspace = Workspace()
    secrets: Secrets = Secrets()
    gpu: Gpu = Gpu()
    tao: Tao = Tao()
    timeouts: Timeouts = Timeouts()

    @classmethod
    def from_yaml(cls, path: str | Path) -> EnvironmentConfig:
        """Loads a config file (YAML, camelCase keys as in the chart's values)."""
        data = yaml.safe_load(Path(path).read_text())
        # An empty file is a mistake (wrong path, failed templating), not "all defaults".
        if not isinstance(data, dict) or not data:
            found = "an empty file" if data is None else f"a {type(data).__name__}"
            raise ValueError(
                f"{path}: expected a mapping of config sections (images, workspace, ...), "
                f"found {found}"
            )
        return cls.model_validate(data)

    def to_yaml(self) -> str:
        """Serialises with camelCase keys, the form the chart renders."""
        return yaml.safe_dump(self.model_dump(by_alias=True, exclude_none=True), sort_keys=False)


class ConfigError(ValueError):
    """An environment config file that is missing, unreadable or invalid; names it and why."""


def load_config(path: str | Path, flag: str = "--config") -> EnvironmentConfig:
    """Loads and validates a config file; ``ConfigError`` (one line per problem) otherwise."""
    from pydantic import ValidationError

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{flag} {path}: no such file")
    try:
        return EnvironmentConfig.from_yaml(path)
    except ValidationError as error:  # before ValueError: it is one, with a longer story
        raise ConfigError(f"{flag} {path} is not a valid environment config:\n{error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{flag} {path} is not text (not UTF-8)") from error
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"{flag} {path} is not a valid environment config: {reason}") from error
    except ValueError as error:  # starts with the file's name
        raise ConfigError(f"{flag} {error}") from error
    except OSError as error:
        raise ConfigError(f"{flag} {path}: {error.strerror or error}") from error


def step_image(env: EnvironmentConfig, gpu: bool, deploy: bool = False) -> str:
    """The image of a step: tools (CPU), TAO (GPU), or tao-deploy for a route's deploy steps.

    ``deploy``: the step is one of its route's deploy tasks; they run in images.taoDeploy
    where tao.version's commands say so (TAO 5.x's engine step, the 6.x engine steps).
    """
    if not gpu:
        return env.images.tools
    if deploy and routes.commands_for(env.tao.version).deploy_image:
        return env.images.tao_deploy
    return env.images.tao


def tao_env_variables(env: EnvironmentConfig) -> Dict[str, str]:
    """Environment variables of every GPU step: TAO's commands and version (see tao_kfp.tao)."""
    return {
        TAO_ENTRYPOINT_ENV: env.tao.entrypoint,
        TAO_CONVERTER_ENV: env.tao.converter,
        TAO_DEPLOY_ENTRYPOINT_ENV: env.tao.deploy_entrypoint,
        TAO_VERSION_ENV: env.tao.version,
    }
