"""What each KFP backend takes from our compiled package, and the one function that adapts it.

Every fact here was read from kubeflow/pipelines at the release tags and is proven by
``make kfp-backends``, which runs each backend's own API server, Argo compiler and driver code
on the adapted package (docs/kfp-backend-harness.md has the source lines):

- 2.0.0-2.4.0 drivers parse the Kubernetes executor config strictly (``jsonpb.UnmarshalString``
  in backend/src/v2/cmd/driver/main.go), so a field the backend's proto lacks fails every task;
  2.4.1+ drivers drop unknown fields silently; 2.14.0+ API servers reject them when the run is
  created (backend/src/v2/compiler/argocompiler/container.go, strict ``protojson.Unmarshal``).
  So every field a backend cannot take is removed, and each real loss is reported.
- Where a backend lacks a field, what it can take instead is used: a fixed GPU count where it
  cannot read the count from a run parameter, a run folder id minted by step 1 where the run id
  placeholder is not substituted.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tao_kfp.routes import route_of_package

Version = Tuple[int, int, int]

# Executor config field -> first backend whose driver applies it. Our package uses only these.
# 2.0.5 kubernetes_platform proto knows secretAsVolume/secretAsEnv/pvcMount/nodeSelector only;
# 2.1.0 adds imagePullSecret, imagePullPolicy, activeDeadlineSeconds and tolerations; 2.3.0
# emptyDirMounts; 2.16.0 securityContext.
EXECUTOR_FIELDS: Dict[str, Version] = {
    "secretAsVolume": (2, 0, 0),
    "secretAsEnv": (2, 0, 0),
    "pvcMount": (2, 0, 0),
    "nodeSelector": (2, 0, 0),
    "imagePullSecret": (2, 1, 0),
    "imagePullPolicy": (2, 1, 0),
    "activeDeadlineSeconds": (2, 1, 0),
    "tolerations": (2, 1, 0),
    "emptyDirMounts": (2, 3, 0),
    "securityContext": (2, 16, 0),
}
# Fields inside list entries: the parameterised names arrive in 2.5.0 (the constant names
# beside them work everywhere), `optional` Secrets in 2.15.0.
ENTRY_FIELDS: Dict[Tuple[str, str], Version] = {
    ("pvcMount", "pvcNameParameter"): (2, 5, 0),
    ("secretAsEnv", "secretNameParameter"): (2, 5, 0),
    ("imagePullSecret", "secretNameParameter"): (2, 5, 0),
    ("secretAsEnv", "optional"): (2, 15, 0),
}
# The driver reads accelerator.resourceCount (which may be a run parameter) from 2.4.0; before,
# only the fixed `count`.
RESOURCE_COUNT_FROM: Version = (2, 4, 0)
# {{$.pipeline_job_uuid}} is substituted from 2.5.0 (backend/src/v2/driver/driver.go).
JOB_UUID_FROM: Version = (2, 5, 0)
JOB_UUID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
NUM_GPUS_PARAMETER = "num_gpus"

# Release commits (healthz commit_sha) of the backends the harness runs (hack/kfp-backends/).
RELEASE_COMMITS: Dict[str, str] = {
    "c5658f09ec38e82730a8eca0a1aabf0876087eec": "2.0.5",
    "dd59f48cdd0f6cd7fac40306277ef5f3dad6e263": "2.2.0",
    "d07cf1c7f9bd163091986de9bb723c4078c498b1": "2.5.0",
    "417091dceddb1f35f26203f9779cb18ee260d6ad": "2.14.4",
    "8fe8d7bdd88f027bde080f619762a0b3294796db": "2.15.0",
    "67a73cf809f7c76fee33c749f302f2bceedd8fab": "2.16.1",
    "4a3592cb2dd0a91a4652ab93893ec8beda1f3158": "2.17.0",
}
# Kubeflow platform release -> the KFP backend it ships (kubeflow/website releases pages).
KUBEFLOW_RELEASES = {(2, 0, 5): "1.8", (2, 2, 0): "1.9", (2, 5, 0): "1.10", (2, 16, 0): "26.03"}

# What no longer happens when a field is removed, and what to do about it.
_LOSS: Dict[str, str] = {
    "imagePullSecret": (
        "no image pull Secret on the pods: add {pull_secrets} to the imagePullSecrets of the "
        "ServiceAccount the pipeline pods run as (pipeline-runner, or default-editor in a "
        "profile namespace)"
    ),
    "imagePullPolicy": "image pull policy left to Kubernetes' default",
    "activeDeadlineSeconds": "no step deadline: a hung step runs until the run is terminated",
    "tolerations": (
        "GPU steps carry no tolerations: on GPU nodes with a NoSchedule taint they stay Pending "
        "(untaint those nodes or give the namespace default tolerations)"
    ),
    "emptyDirMounts": (
        "/dev/shm keeps the container runtime's default size (64Mi), so TAO data loaders with "
        "many workers can fail with a bus error; lower batch_size if they do"
    ),
    "securityContext": (
        "runAsUser/runAsGroup not applied, pods run as the image's user; files they write on "
        "the workspace get that owner"
    ),
    "optional": (
        "optional Secrets not applied: a step whose Secret or key is missing stops at "
        "CreateContainerConfigError instead of starting without it"
    ),
}


@dataclass(frozen=True, order=True)
class KfpBackend:
    """A KFP backend version, as ``GET /apis/v2beta1/healthz`` reports it in ``tag_name``."""

    version: Version

    @classmethod
    def parse(cls, text: str) -> KfpBackend:
        """Parses "2.5.0", "v2.16.1" or "2.15.0-rc.1"; raises ValueError for anything else."""
        match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+][0-9A-Za-z.-]*)?$", text.strip())
        if match is None:
            raise ValueError(
                f"KFP backend version {text!r} is not a version such as 2.16.0 (set "
                "kfp.backendVersion, or --kfp-version, to the version the backend is built from)"
            )
        major, minor, patch = (int(part or 0) for part in match.groups())
        return cls(version=(major, minor, patch))

    def __str__(self) -> str:
        return ".".join(str(part) for part in self.version)

    def kubeflow(self) -> str:
        """'KFP 2.5.0 (Kubeflow 1.10)', or just 'KFP 2.15.0'."""
        release = KUBEFLOW_RELEASES.get(self.version)
        return f"KFP {self}" + (f" (Kubeflow {release})" if release else "")

    def check_supported(self) -> None:
        """Raises ValueError, naming the fix, for a backend that cannot run the package."""
        if self.version >= (2, 0, 0):
            return
        raise ValueError(
            f"KFP backend {self} runs KFP v1 pipelines only and this is a KFP v2 package: "
            "upgrade to Kubeflow 1.8 (KFP 2.0.5) or newer, or standalone KFP 2.x."
        )


def adapt_for_backend(docs: List[dict], backend: KfpBackend) -> Tuple[List[dict], List[str]]:
    """Rewrites a compiled package for ``backend``; returns (new docs, what is lost).

    Each "lost" line says what no longer happens on that backend (for the upload log and
    ``tao-kfp render --kfp-version``). Raises ValueError only for a backend that cannot run
    the package at all.
    """
    backend.check_supported()
    version = backend.version
    docs = copy.deepcopy(docs)
    lost: List[str] = []
    spec = docs[0]
    platform = next((doc for doc in docs[1:] if "platforms" in doc), None)
    executors = (
        platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if platform else {}
    )
    pull_secrets = sorted(
        {entry["secretName"] for c in executors.values() for entry in c.get("imagePullSecret", [])}
    )
    removed: Dict[str, List[str]] = {}
    for label, config in executors.items():
        for field in list(config):
            if version < EXECUTOR_FIELDS.get(field, (0, 0, 0)):
                removed.setdefault(field, []).append(label)
                del config[field]
        for (field, entry_field), since in ENTRY_FIELDS.items():
            if version >= since:
                continue
            for entry in config.get(field, []):
                if entry.pop(entry_field, None) is not None and entry_field == "optional":
                    removed.setdefault("optional", []).append(label)
    for field in _LOSS:
        if field in removed:
            lost.append(_LOSS[field].format(pull_secrets=", ".join(pull_secrets) or "them"))
    if version < RESOURCE_COUNT_FROM:
        pinned = _pin_gpu_count(spec)
        if pinned is not None:
            count, tasks = pinned
            lost.append(
                f"the num_gpus run parameter does not set the GPU limit (the driver reads a "
                f"count from a run parameter from 2.4.0): {' and '.join(tasks)} use "
                f"gpu.count={count}"
            )
    if version < JOB_UUID_FROM and _mint_run_folder(spec):
        lost.append(
            "step 1 names the run folder experiments/<time>-<random>/ itself: the run id "
            "placeholder is substituted from 2.5.0"
        )
    return docs, [f"{backend.kubeflow()}: {line}" for line in lost]


def _pin_gpu_count(spec: dict) -> Optional[Tuple[str, List[str]]]:
    """Sets `count` where resourceCount is a run parameter; the tasks get that count too.

    Returns the count and the tasks pinned (the route's multi-GPU tasks, as its DAG compiled
    them: train and retrain on TF1, train and compress on PyTorch), None when none is.
    """
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    if NUM_GPUS_PARAMETER not in parameters:
        return None
    count = str(parameters[NUM_GPUS_PARAMETER].get("defaultValue", "1"))
    pinned = set()
    for label, executor in spec["deploymentSpec"]["executors"].items():
        accelerator = executor.get("container", {}).get("resources", {}).get("accelerator")
        if accelerator and "{{$" in str(accelerator.get("resourceCount", "")):
            accelerator["count"] = count
            accelerator["resourceCount"] = count
            pinned.add(label)
    if not pinned:
        return None
    labels = {name: c.get("executorLabel") for name, c in spec["components"].items()}
    tasks = []
    for name, task in spec["root"]["dag"]["tasks"].items():
        if labels.get(task["componentRef"]["name"]) not in pinned:
            continue
        tasks.append(name)
        for value in task.get("inputs", {}).get("parameters", {}).values():
            if value.get("componentInputParameter") == NUM_GPUS_PARAMETER:
                value.pop("componentInputParameter")
                value["runtimeValue"] = {"constant": count}
    route = route_of_package(spec)
    if route is not None:  # in the order the route declares its steps
        tasks.sort(key=list(route.step_kinds).index)
    return count, tasks


def _mint_run_folder(spec: dict) -> bool:
    """Replaces the run id placeholder by "": step 1 then names the run folder itself."""
    changed = False
    for task in spec["root"]["dag"]["tasks"].values():
        for value in task.get("inputs", {}).get("parameters", {}).values():
            if value.get("runtimeValue", {}).get("constant") == JOB_UUID_PLACEHOLDER:
                value["runtimeValue"]["constant"] = ""
                changed = True
    return changed
