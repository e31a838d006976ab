"""The environment config: everything about a cluster that the pipeline needs but a run does not.

One typed model with defaults. The shipped pipeline is compiled with the defaults;
``adapt_package`` is the single code path that rewrites a compiled package for another
environment (used by the chart's upload Job, by ``tao-kfp render`` and by local runs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from tao_kfp import __version__

# Kubernetes extended resource names: nvidia.com/gpu or MIG slices such as nvidia.com/mig-1g.10gb.
GPU_RESOURCE_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

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
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class Workspace(_Model):
    """The shared workspace volume (datasets, pretrained models, specs, experiments)."""

    claim_name: str = Field(default="tao-kfp-workspace", pattern=DNS_SUBDOMAIN_PATTERN)
    mount_path: str = "/workspace"
    # One UID/GID for every pod that writes the workspace, so files stay writable on NFS.
    run_as_user: int = Field(default=1000, ge=1)
    run_as_group: int = Field(default=1000, ge=1)

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError(f"workspace.mountPath must be an absolute path other than '/', got {value!r}")
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

    key: Optional[str] = None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    toleration_seconds: Optional[int] = None


class Gpu(_Model):
    """How GPU steps are scheduled. Applies to GPU steps only."""

    resource: str = Field(default="nvidia.com/gpu", pattern=GPU_RESOURCE_PATTERN)
    # Default of the run form's num_gpus; TAO's --gpus always equals the requested count.
    count: int = Field(default=1, ge=1, le=16)
    node_selector: Dict[str, str] = {"nvidia.com/gpu.present": "true"}
    tolerations: List[Toleration] = [
        Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    ]
    # TAO's data loaders use shared memory; the container default of 64Mi kills training.
    shm_size: str = Field(default="16Gi", pattern=QUANTITY_PATTERN)


class Tao(_Model):
    """How TAO is invoked inside the step image."""

    # 3.x: "classification"; 4.x/5.x: "classification_tf1". May be a multi-word command.
    entrypoint: str = "classification"
    converter: str = "converter"
    # Selects version-dependent file names and flags (.tlt vs .hdf5, .etlt vs .onnx).
    version: Literal["3", "4", "5"] = "3"


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
    def from_yaml(cls, path: "str | Path") -> "EnvironmentConfig":
        """Loads a config file (YAML, camelCase keys as in the chart's values)."""
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)

    def to_yaml(self) -> str:
        """Serialises with camelCase keys, the form the chart renders."""
        return yaml.safe_dump(self.model_dump(by_alias=True, exclude_none=True), sort_keys=False)


def _is_dns_label(value: str) -> bool:
    return re.match(DNS_LABEL_PATTERN, value) is not None


def add_arguments(parser):
    """Registers this subcommand's flags."""


def run(args):
    """Runs the subcommand."""
    raise SystemExit("tao-kfp: not implemented yet")
