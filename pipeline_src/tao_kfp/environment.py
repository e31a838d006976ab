"""The environment config: everything about a cluster that the pipeline needs but a run does not.

One typed model with defaults. The shipped pipeline is compiled with the defaults;
``adapt_package`` is the single code path that rewrites a compiled package for another
environment (used by the chart's upload Job, by ``tao-kfp render`` and by local runs).
"""

from __future__ import annotations

import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Dict, List, Literal, Optional, Tuple

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

from tao_kfp import __version__

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
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

DEFAULT_IMAGE_REPOSITORY = "localhost:5000/tao-kfp"
# The compiled pipeline, relative to the chart's files/ (see tao_kfp.resources).
PIPELINE_PACKAGE = "pipelines/tao-classification.yaml"


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
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$")


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


# TAO's classification command per supported major version (tao-classification.md section 1).
# TAO 4.x is refused: its checkpoint format and prune behaviour are unverified, and 5.0's
# prune appends .hdf5 to a .tlt path (common/magnet_prune.py:231-245), so guessing crashes.
TAO_COMMANDS = {"3": "classification", "5": "classification_tf1"}
CPU_BACKEND_MODULE = "tao_kfp.cpu_backend"


class Tao(_Model):
    """How TAO is invoked inside the step images; ``version`` chooses the route of steps 10-12."""

    # 3.x: "classification"; 5.x: "classification_tf1". May be a multi-word command.
    entrypoint: str = "classification"
    # 3.x only: builds the TensorRT engine from the INT8 .etlt export.
    converter: str = "converter"
    # 5.x only: the command of the tao-deploy image (images.taoDeploy) that runs gen_trt_engine.
    deploy_entrypoint: str = "classification_tf1"
    # Selects version-dependent file names and flags (.tlt/.etlt and converter for 3,
    # .hdf5/.onnx and gen_trt_engine for 5).
    version: Literal["3", "5"] = "3"

    @field_validator("version", mode="before")
    @classmethod
    def _supported(cls, value):
        if str(value) == "4":
            raise ValueError(
                "tao.version 4 is not supported: TAO 4.x's checkpoint format and prune flags are "
                "unverified. Use a TAO 3.x image (version 3) or a 5.x image (version 5)."
            )
        return str(value)

    @model_validator(mode="after")
    def _consistent(self) -> Tao:
        problems = version_problems(self.version, self.entrypoint)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def version_problems(version: str, entrypoint: str) -> List[str]:
    """Why ``entrypoint`` cannot be TAO ``version``'s command ([] when they agree).

    A TAO command name (``classification``/``classification_tf1``) anywhere in the command must
    be the version's own; the CPU backend's ``--tao-version`` must equal it. Other commands
    (site wrappers) are not judged.
    """
    import shlex

    words = shlex.split(entrypoint)
    names = {word.rsplit("/", 1)[-1] for word in words}
    expected = TAO_COMMANDS[version]
    problems = []
    for other_version, command in TAO_COMMANDS.items():
        if command in names and other_version != version:
            problems.append(
                f"tao.entrypoint {entrypoint!r} is TAO {other_version}'s command but tao.version "
                f"is {version}: set tao.version={other_version}, or tao.entrypoint={expected}"
            )
    if CPU_BACKEND_MODULE in words:
        flag = words[words.index("--tao-version") + 1] if "--tao-version" in words[:-1] else "3"
        if flag != version:
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


def _is_dns_label(value: str) -> bool:
    return re.match(DNS_LABEL_PATTERN, value) is not None


# Names the compiled package uses; they must match tao_kfp.pipeline and tao_kfp.tao.
VALIDATE_TASK = "validate-inputs"
# The one step that runs in the tao-deploy image on the 5.x route (gen_trt_engine).
ENGINE_TASK = "convert-tensorrt"
NUM_GPUS_PARAMETER = "num_gpus"
SECRET_ENV_NGC_API_KEY = "NGC_CLI_API_KEY"
SECRET_ENV_MODEL_KEY = "TAO_MODEL_KEY"
SHM_MOUNT_PATH = "/dev/shm"


def load_package(path: str | Path) -> List[dict]:
    """Reads a compiled pipeline package: the pipeline spec, then the platform spec (if any)."""
    return [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc is not None]


def dump_package(docs: List[dict]) -> str:
    """Writes documents as multi-document YAML that KFP (and load_component_from_file) reads."""
    return yaml.safe_dump_all(docs, sort_keys=True, width=100)


def _constant(value: str) -> dict:
    return {"runtimeValue": {"constant": value}}


def _is_gpu_executor(executor: dict) -> bool:
    # GPU steps are exactly the ones requesting an accelerator (tests pin this down).
    return "accelerator" in executor.get("container", {}).get("resources", {})


def step_image(env: EnvironmentConfig, gpu: bool, engine: bool = False) -> str:
    """The image of a step: tools (CPU), TAO (GPU), or tao-deploy for the 5.x engine step."""
    if not gpu:
        return env.images.tools
    return env.images.tao_deploy if engine and env.tao.version == "5" else env.images.tao


def tao_env_variables(env: EnvironmentConfig) -> Dict[str, str]:
    """Environment variables of every GPU step: TAO's commands and version (see tao_kfp.tao)."""
    return {
        "TAO_ENTRYPOINT": env.tao.entrypoint,
        "TAO_CONVERTER": env.tao.converter,
        "TAO_DEPLOY_ENTRYPOINT": env.tao.deploy_entrypoint,
        "TAO_VERSION": env.tao.version,
    }


def _adapt_container(container: dict, env: EnvironmentConfig, gpu: bool, engine: bool) -> None:
    container["image"] = step_image(env, gpu, engine)
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
        SECRET_ENV_NGC_API_KEY: env.secrets.ngc_api_key,
        SECRET_ENV_MODEL_KEY: env.secrets.model_key,
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
    the package for a cluster: images (the engine step's follows tao.version) and pull
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
    """
    docs = copy.deepcopy(docs)
    pipeline_spec = docs[0]
    executors = pipeline_spec["deploymentSpec"]["executors"]
    gpu_labels = {label for label, ex in executors.items() if _is_gpu_executor(ex)}
    root = pipeline_spec["root"]
    engine_component = root["dag"]["tasks"][ENGINE_TASK]["componentRef"]["name"]
    engine_label = pipeline_spec["components"][engine_component]["executorLabel"]
    for label, executor in executors.items():
        _adapt_container(executor["container"], env, label in gpu_labels, label == engine_label)

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


# -- KFP backend versions ------------------------------------------------------------------
# Which backend applies which platform field, read from kubeflow/pipelines (see
# /work/shared/reference/kfp-backend.md; README "KFP backend versions" has the table):
# - 2.0.0-2.4.0: the driver parses platform config strictly, so any field it does not know
#   fails every task; 2.4.1 is lenient (PR #11662) but leaves {{$.pipeline_job_uuid}}
#   unsubstituted; pvcNameParameter/secretNameParameter arrive in 2.5.0. Hence the floor.
# - 2.5.x: lenient driver, silently drops securityContext and secretAsEnv `optional`.
#   (There are no backends 2.6-2.13: releases went from 2.5.0 to 2.14.0.)
# - 2.14.0+: the API server's Argo compiler reads the executor config with protojson.Unmarshal,
#   which rejects unknown fields, so the run is refused (backend/src/v2/compiler/argocompiler/
#   container.go:285 at 2.14.0, :326 at 2.17.0).
# - secretAsEnv `optional` exists from 2.15.0 (kubernetes_platform/proto/
#   kubernetes_executor_config.proto:77, applied in backend/src/v2/driver/k8s.go:340-341;
#   neither at 2.14.0), securityContext from 2.16.0 (proto :43, k8s.go:724).
MIN_KFP_BACKEND = (2, 5, 0)
_SECURITY_CONTEXT_FROM = (2, 16, 0)
_OPTIONAL_SECRETS_FROM = (2, 15, 0)


@dataclass(frozen=True)
class KfpBackend:
    """A KFP backend version, as ``GET /apis/v2beta1/healthz`` reports it in ``tag_name``."""

    version: Tuple[int, int, int]

    @classmethod
    def parse(cls, text: str) -> KfpBackend:
        """Parses "2.5.0", "v2.16.1" or "2.15.0-rc.1"; raises ValueError naming the floor."""
        match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.-]*)?$", text.strip())
        if match is None:
            raise ValueError(
                f"KFP backend version {text!r} is not a version such as 2.16.0 "
                "(custom builds report 'unknown': state the version they are built from)"
            )
        major, minor, patch = (int(part or 0) for part in match.groups())
        return cls(version=(major, minor, patch))

    def __str__(self) -> str:
        return ".".join(str(part) for part in self.version)

    def check_supported(self) -> None:
        """Raises ValueError, with the reason, for a backend below the floor."""
        if self.version >= MIN_KFP_BACKEND:
            return
        floor = ".".join(map(str, MIN_KFP_BACKEND))
        why = (
            "its driver leaves {{$.pipeline_job_uuid}} (the run id every step files its "
            "outputs under) unsubstituted"
            if self.version >= (2, 4, 1)
            else "its driver rejects the package's Kubernetes settings, so every step fails"
        )
        raise ValueError(
            f"KFP backend {self} is not supported: {why}. This pipeline needs KFP {floor} or "
            "newer (2.16.0+ applies everything); upgrade Kubeflow Pipelines."
        )


def adapt_for_backend(docs: List[dict], backend: KfpBackend) -> Tuple[List[dict], List[str]]:
    """Drops the platform fields ``backend`` cannot take; returns (new docs, what is lost).

    Each "lost" line says what no longer happens on that backend, for the upload log and
    ``tao-kfp render --kfp-version``. Raises ValueError below the floor.
    """
    backend.check_supported()
    docs = copy.deepcopy(docs)
    lost: List[str] = []
    platform = next((doc for doc in docs[1:] if "platforms" in doc), None)
    if platform is None:
        return docs, lost
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    if backend.version < _SECURITY_CONTEXT_FROM:
        dropped = [
            config.pop("securityContext") for config in executors if "securityContext" in config
        ]
        if dropped:
            lost.append(
                f"KFP {backend}: runAsUser/runAsGroup not applied (needs 2.16.0), pods run as "
                "the image's user; files they write on the workspace get that owner"
            )
    if backend.version < _OPTIONAL_SECRETS_FROM:
        optional = [
            secret.pop("optional")
            for config in executors
            for secret in config.get("secretAsEnv", [])
            if "optional" in secret
        ]
        if optional:
            lost.append(
                f"KFP {backend}: optional Secrets not applied (needs 2.15.0), a step whose "
                "Secret or key is missing fails with CreateContainerConfigError"
            )
    return docs, lost


def add_arguments(parser) -> None:
    """Registers ``render --config ENV.yaml [--package PATH] [--out PATH|-]``."""
    parser.add_argument("--config", required=True, help="environment config YAML (camelCase keys)")
    parser.add_argument(
        "--package",
        help="compiled pipeline to adapt (default: the shipped pipelines/tao-classification.yaml)",
    )
    parser.add_argument("--out", default="-", help="where to write the result; - for stdout")
    parser.add_argument(
        "--kfp-version",
        help="KFP backend version that will run it (e.g. 2.15.0): drop what it cannot take "
        "and print what is lost (default: a backend that takes everything)",
    )


def run(args) -> int:
    """Adapts the compiled package to the config and writes it (what the upload Job uploads)."""
    from pydantic import ValidationError

    from tao_kfp.resources import shipped_file

    try:
        env = EnvironmentConfig.from_yaml(args.config)
    except ValidationError as error:  # before ValueError: it is one, with a longer story
        print(
            f"tao-kfp render: invalid environment config {args.config}:\n{error}", file=sys.stderr
        )
        return 2
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        print(
            f"tao-kfp render: invalid environment config {args.config}: {reason}", file=sys.stderr
        )
        return 2
    except ValueError as error:  # names the file itself
        print(f"tao-kfp render: invalid environment config: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"tao-kfp render: --config {args.config}: {error.strerror}", file=sys.stderr)
        return 2
    package = args.package or shipped_file(PIPELINE_PACKAGE)
    try:
        docs = load_package(package)
    except OSError as error:
        print(f"tao-kfp render: --package {package}: {error.strerror}", file=sys.stderr)
        return 2
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        print(f"tao-kfp render: --package {package} is not valid YAML: {reason}", file=sys.stderr)
        return 2
    first = docs[0] if docs else None
    if not isinstance(first, dict) or "deploymentSpec" not in first or "root" not in first:
        print(
            f"tao-kfp render: --package {package} is not a compiled KFP pipeline (no "
            "deploymentSpec and root); pass the YAML that `tao-kfp compile` writes",
            file=sys.stderr,
        )
        return 2
    docs = adapt_package(docs, env)
    if args.kfp_version:
        try:
            docs, lost = adapt_for_backend(docs, KfpBackend.parse(args.kfp_version))
        except ValueError as error:
            print(f"tao-kfp render: {error}", file=sys.stderr)
            return 2
        for line in lost or [f"KFP {args.kfp_version}: nothing lost"]:
            print(line, file=sys.stderr)
    text = dump_package(docs)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text)
        except OSError as error:
            print(f"tao-kfp render: --out {args.out}: {error.strerror}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} (adapted from {package})", file=sys.stderr)
    return 0
