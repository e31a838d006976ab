"""Runs a rendered Kubernetes pod spec (a Job's template or a Pod) in podman containers.

`make e2e` runs the chart's Jobs and helm-test pods with it. `podman kube play` (podman 4.3)
fails on `env.valueFrom.secretKeyRef`, so this translates the spec to `podman run` itself.

It reads every field the chart sets and refuses any other (``UnsupportedField``), so a new
field in a template must be taught here before e2e passes again. What each field becomes:

- ``command`` / ``args``: Kubernetes' rule (k8s.io/api core/v1 types.go, Container.Command:
  "The container image's ENTRYPOINT is used if this is not provided"; Args: "The container
  image's CMD is used if this is not provided"): ``command`` replaces the image ENTRYPOINT
  (``--entrypoint``, which also drops the image CMD, as Kubernetes does when command is set).
- ``env`` (value, secretKeyRef, configMapKeyRef) and ``envFrom`` (secretRef, configMapRef):
  resolved from the ``Cluster`` and passed in a 0600 env file (values never on a command line).
  A missing Secret/ConfigMap or key fails the start, as the kubelet's CreateContainerConfigError.
- volumes: configMap/secret/projected (serviceAccountToken, configMap, secret) become files
  in a fresh folder mounted read-only (the kubelet mounts them read-only too); emptyDir a fresh
  folder with mode 0777 (the kubelet's emptyDir mode); persistentVolumeClaim the claim's host
  folder from the ``Cluster`` (read-only when the claim, the volume or the mount says so);
  hostPath (type Directory or DirectoryOrCreate) the host folder itself (no chart pod uses it:
  local-path-provisioner's helper pods do, under `make e2e-cluster`).
- automountServiceAccountToken (default true in Kubernetes): the Cluster's service-account
  folder at /var/run/secrets/kubernetes.io/serviceaccount, plus KUBERNETES_SERVICE_HOST/PORT.
- securityContext: runAsUser/runAsGroup -> ``--user``; fsGroup and supplementalGroups ->
  ``--group-add`` (the kubelet adds fsGroup to the container's groups); runAsNonRoot checked
  against the effective uid as the kubelet does; readOnlyRootFilesystem -> ``--read-only`` with
  ``--read-only-tmpfs=false`` (podman would otherwise add writable /tmp, /run, /var/tmp that a
  pod does not have); capabilities drop/add -> ``--cap-drop/--cap-add``;
  allowPrivilegeEscalation false -> ``no-new-privileges``; seccomp RuntimeDefault = podman's
  default profile.
- resources.limits cpu/memory -> ``--cpus``/``--memory``; ephemeral-storage (kubelet eviction)
  and requests (scheduling only) are read and not applied. imagePullPolicy: images are local
  (``--pull never``).
- Not emulated (no Kubernetes here): scheduling, restartPolicy/backoff (one attempt), emptyDir
  sizeLimit eviction, fsGroup ownership changes on volumes, network policies.

Usage from Python: ``run_pod(doc, cluster, workdir)``; from the shell, to see the commands:
``python hack/podrun.py MANIFEST.yaml NAME`` prints them for a pod or Job in a rendered manifest.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class UnsupportedField(Exception):
    """The spec sets a field this translator does not know: teach it before trusting e2e."""


class PodStartError(Exception):
    """The kubelet would not start the container (missing Secret key, runAsNonRoot, ...)."""


@dataclass
class Claim:
    """A PersistentVolumeClaim as a host folder."""

    host_path: Path
    read_only: bool = False


@dataclass
class Cluster:
    """What the API server and the kubelet would provide to a pod."""

    namespace: str
    secrets: Dict[str, Dict[str, str]] = field(default_factory=dict)  # name -> key -> text
    config_maps: Dict[str, Dict[str, str]] = field(default_factory=dict)
    claims: Dict[str, Claim] = field(default_factory=dict)
    # audience -> token text, for projected serviceAccountToken sources
    tokens: Dict[str, str] = field(default_factory=dict)
    # folder with token, ca.crt, namespace: the automounted ServiceAccount credentials
    service_account_dir: Optional[Path] = None
    api_host: str = "127.0.0.1"
    api_port: int = 0
    engine: str = "podman"

    def add_manifest_objects(self, docs: List[Dict[str, Any]]) -> None:
        """Stores the Secrets and ConfigMaps of a rendered manifest, as `helm install` would."""
        for doc in docs:
            kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
                data.update(doc.get("stringData") or {})
                self.secrets[name] = data
            elif kind == "ConfigMap":
                self.config_maps[name] = dict(doc.get("data") or {})


@dataclass
class ContainerRun:
    """One `podman run` and what it resolved to."""

    pod: str
    container: str
    argv: List[str]  # the podman command line (no secret values in it)
    executed: List[str]  # what the runtime executes in the container: entrypoint + args
    command_from_image: bool  # True when the pod left `command` to the image's ENTRYPOINT


@dataclass
class PodResult:
    """Outcome of a pod: each container's exit code and output, in order."""

    name: str
    runs: List[ContainerRun]
    exit_codes: List[int]
    logs: List[str]

    @property
    def succeeded(self) -> bool:
        return bool(self.exit_codes) and all(code == 0 for code in self.exit_codes)

    @property
    def log(self) -> str:
        return "\n".join(self.logs)


# -- field checks -------------------------------------------------------------------------------

_POD_FIELDS = {
    "restartPolicy",
    "serviceAccountName",
    "automountServiceAccountToken",
    "imagePullSecrets",
    "securityContext",
    "containers",
    "initContainers",
    "volumes",
}
_POD_SECURITY = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "fsGroupChangePolicy",
    "supplementalGroups",
    "seccompProfile",
}
_CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "envFrom",
    "securityContext",
    "resources",
    "volumeMounts",
    "workingDir",
}
_CONTAINER_SECURITY = {
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "capabilities",
    "seccompProfile",
    "privileged",
}
_VOLUME_KINDS = {
    "configMap",
    "secret",
    "projected",
    "emptyDir",
    "persistentVolumeClaim",
    "hostPath",
}


def _only(mapping: Dict[str, Any], allowed: set, where: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise UnsupportedField(
            f"{where}: {', '.join(unknown)} (hack/podrun.py does not translate it)"
        )


def _seccomp(context: Dict[str, Any], where: str) -> None:
    profile = context.get("seccompProfile")
    if profile is not None and profile != {"type": "RuntimeDefault"}:
        raise UnsupportedField(f"{where}.seccompProfile: {profile} (only RuntimeDefault)")


# -- translation --------------------------------------------------------------------------------


def pod_spec(doc: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """(name, pod spec) of a Pod or a Job."""
    kind, name = doc.get("kind"), doc["metadata"]["name"]
    if kind == "Pod":
        return name, doc["spec"]
    if kind == "Job":
        return name, doc["spec"]["template"]["spec"]
    raise UnsupportedField(f"{kind} {name}: only Pods and Jobs run here")


def image_config(engine: str, image: str) -> Dict[str, Any]:
    """The image's Entrypoint, Cmd and User as the runtime reads them."""
    out = subprocess.run(
        [engine, "image", "inspect", "--format", "{{json .Config}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise PodStartError(f"image {image} is not present locally: {out.stderr.strip()}")
    return json.loads(out.stdout) or {}


def _resolve_env(container: Dict[str, Any], cluster: Cluster, where: str) -> List[Tuple[str, str]]:
    env: List[Tuple[str, str]] = []
    for source in container.get("envFrom", []):
        _only(source, {"secretRef", "configMapRef", "prefix"}, f"{where}.envFrom")
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            ref, store, kind = source["secretRef"], cluster.secrets, "Secret"
        else:
            ref, store, kind = source["configMapRef"], cluster.config_maps, "ConfigMap"
        _only(ref, {"name", "optional"}, f"{where}.envFrom")
        if ref["name"] not in store:
            if ref.get("optional"):
                continue
            raise PodStartError(f"{where}: {kind} {ref['name']!r} not found")
        env.extend((prefix + k, v) for k, v in store[ref["name"]].items())
    for item in container.get("env", []):
        _only(item, {"name", "value", "valueFrom"}, f"{where}.env")
        if "valueFrom" not in item:
            env.append((item["name"], str(item.get("value", ""))))
            continue
        value_from = item["valueFrom"]
        _only(value_from, {"secretKeyRef", "configMapKeyRef"}, f"{where}.env.valueFrom")
        if "secretKeyRef" in value_from:
            ref, store, kind = value_from["secretKeyRef"], cluster.secrets, "Secret"
        else:
            ref, store, kind = value_from["configMapKeyRef"], cluster.config_maps, "ConfigMap"
        _only(ref, {"name", "key", "optional"}, f"{where}.env.valueFrom")
        value = store.get(ref["name"], {}).get(ref["key"])
        if value is None:
            if ref.get("optional"):
                continue
            raise PodStartError(
                f"{where}: couldn't find key {ref['key']} in {kind} "
                f"{cluster.namespace}/{ref['name']}"
            )
        env.append((item["name"], value))
    return env


def _write_items(target: Path, data: Dict[str, str], items: Optional[List[Dict[str, Any]]], where):
    selected = data
    if items is not None:
        selected = {}
        for item in items:
            _only(item, {"key", "path", "mode"}, f"{where}.items")
            if item["key"] not in data:
                raise PodStartError(f"{where}: key {item['key']!r} not found")
            selected[item["path"]] = data[item["key"]]
    for path, text in selected.items():
        file = target / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        file.chmod(0o644)


def _volume_dir(
    volume: Dict[str, Any], cluster: Cluster, scratch: Path, where: str
) -> Tuple[Path, bool]:
    """(host folder, read-only) for one pod volume."""
    kinds = set(volume) - {"name"}
    if len(kinds) != 1 or not kinds <= _VOLUME_KINDS:
        raise UnsupportedField(f"{where}: volume type {sorted(kinds)}")
    kind = kinds.pop()
    spec = volume[kind] or {}
    folder = scratch / f"volume-{volume['name']}"
    if kind == "persistentVolumeClaim":
        _only(spec, {"claimName", "readOnly"}, where)
        claim = cluster.claims.get(spec["claimName"])
        if claim is None:
            raise PodStartError(f"{where}: persistentvolumeclaim {spec['claimName']!r} not found")
        return claim.host_path, claim.read_only or bool(spec.get("readOnly"))
    if kind == "hostPath":
        _only(spec, {"path", "type"}, where)
        if spec.get("type") not in (None, "", "Directory", "DirectoryOrCreate"):
            raise UnsupportedField(f"{where}.hostPath.type: {spec['type']}")
        host = Path(spec["path"])
        if spec.get("type") == "DirectoryOrCreate":
            host.mkdir(parents=True, exist_ok=True)
        if not host.is_dir():
            raise PodStartError(f"{where}: hostPath {host} is not a directory")
        return host, False
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    if kind == "emptyDir":
        _only(spec, {"sizeLimit", "medium"}, where)
        if spec.get("medium") not in (None, "", "Memory"):
            raise UnsupportedField(f"{where}.emptyDir.medium: {spec['medium']}")
        folder.chmod(0o777)
        return folder, False
    if kind in ("configMap", "secret"):
        _only(spec, {"name", "secretName", "items", "defaultMode", "optional"}, where)
        name = spec.get("name") or spec.get("secretName")
        store = cluster.config_maps if kind == "configMap" else cluster.secrets
        if name not in store and not spec.get("optional"):
            raise PodStartError(f"{where}: {kind} {name!r} not found")
        _write_items(folder, store.get(name, {}), spec.get("items"), where)
        return folder, True
    # projected
    _only(spec, {"sources", "defaultMode"}, where)
    for source in spec["sources"]:
        _only(source, {"serviceAccountToken", "configMap", "secret"}, f"{where}.sources")
        if "serviceAccountToken" in source:
            token = source["serviceAccountToken"]
            _only(token, {"path", "audience", "expirationSeconds"}, f"{where}.serviceAccountToken")
            audience = token.get("audience", "kubernetes")
            if audience not in cluster.tokens:
                raise PodStartError(f"{where}: no token for audience {audience!r} in this cluster")
            _write_items(folder, {token["path"]: cluster.tokens[audience]}, None, where)
        else:
            kind_name = "configMap" if "configMap" in source else "secret"
            ref = source[kind_name]
            _only(ref, {"name", "items", "optional"}, f"{where}.{kind_name}")
            store = cluster.config_maps if kind_name == "configMap" else cluster.secrets
            if ref["name"] not in store and not ref.get("optional"):
                raise PodStartError(f"{where}: {kind_name} {ref['name']!r} not found")
            _write_items(folder, store.get(ref["name"], {}), ref.get("items"), where)
    return folder, True


def _user(pod_ctx: Dict[str, Any], ctx: Dict[str, Any], image: Dict[str, Any], where: str):
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
    image_user = str(image.get("User") or "0")
    effective_uid = uid if uid is not None else image_user.split(":")[0]
    if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")):
        if not str(effective_uid).isdigit():
            # the kubelet's rule: a non-numeric image user cannot be verified as non-root
            raise PodStartError(f"{where}: image has non-numeric user ({image_user}), runAsNonRoot")
        if int(effective_uid) == 0:
            raise PodStartError(f"{where}: container has runAsNonRoot and image will run as root")
    if uid is None and gid is None:
        return None
    user = str(uid if uid is not None else image_user.split(":")[0])
    return f"{user}:{gid}" if gid is not None else user


def translate(
    doc: Dict[str, Any], cluster: Cluster, scratch: Path
) -> Tuple[List[ContainerRun], List[Path]]:
    """The `podman run` command lines for a Pod/Job, init containers first.

    Returns the runs and the env files holding resolved values (callers delete ``scratch``).
    """
    name, spec = pod_spec(doc)
    _only(spec, _POD_FIELDS, f"{name}.spec")
    if spec.get("restartPolicy", "Always") not in ("Never", "OnFailure"):
        raise UnsupportedField(
            f"{name}: restartPolicy {spec.get('restartPolicy')} (a long-running pod)"
        )
    if len(spec["containers"]) != 1:
        raise UnsupportedField(f"{name}: {len(spec['containers'])} containers (one runs here)")
    pod_ctx = spec.get("securityContext", {})
    _only(pod_ctx, _POD_SECURITY, f"{name}.securityContext")
    _seccomp(pod_ctx, f"{name}.securityContext")
    groups = [str(g) for g in pod_ctx.get("supplementalGroups", [])]
    if "fsGroup" in pod_ctx:
        groups.append(str(pod_ctx["fsGroup"]))
    volumes = {}
    for volume in spec.get("volumes", []):
        volumes[volume["name"]] = _volume_dir(
            volume, cluster, scratch, f"{name}.volumes[{volume['name']}]"
        )
    automount = spec.get("automountServiceAccountToken", True)

    runs, env_files = [], []
    for container in spec.get("initContainers", []) + spec["containers"]:
        where = f"{name}/{container['name']}"
        _only(container, _CONTAINER_FIELDS, where)
        ctx = container.get("securityContext", {})
        _only(ctx, _CONTAINER_SECURITY, f"{where}.securityContext")
        _seccomp(ctx, f"{where}.securityContext")
        image = image_config(cluster.engine, container["image"])
        argv = [
            cluster.engine,
            "run",
            "--rm",
            "--pull=never",
            f"--name={name}-{container['name']}",
            "--network=host",
        ]
        user = _user(pod_ctx, ctx, image, where)
        if user:
            argv.append(f"--user={user}")
        argv += [f"--group-add={g}" for g in groups]
        if ctx.get("readOnlyRootFilesystem"):
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if ctx.get("privileged"):
            raise UnsupportedField(f"{where}: privileged containers")
        caps = ctx.get("capabilities", {})
        _only(caps, {"drop", "add"}, f"{where}.securityContext.capabilities")
        argv += [f"--cap-drop={c}" for c in caps.get("drop", [])]
        argv += [f"--cap-add={c}" for c in caps.get("add", [])]
        if ctx.get("allowPrivilegeEscalation") is False:
            argv.append("--security-opt=no-new-privileges")
        resources = container.get("resources", {})
        _only(resources, {"requests", "limits"}, f"{where}.resources")
        limits = resources.get("limits", {})
        _only(limits, {"cpu", "memory", "ephemeral-storage"}, f"{where}.resources.limits")
        if "cpu" in limits:
            cpu = str(limits["cpu"])
            argv.append(f"--cpus={int(cpu[:-1]) / 1000 if cpu.endswith('m') else float(cpu)}")
        if "memory" in limits:
            argv.append(f"--memory={_bytes(str(limits['memory']))}")
        if "workingDir" in container:
            argv.append(f"--workdir={container['workingDir']}")

        env = _resolve_env(container, cluster, where)
        env.append(("KUBERNETES_SERVICE_HOST", cluster.api_host))
        env.append(("KUBERNETES_SERVICE_PORT", str(cluster.api_port)))
        env_file = scratch / f"env-{container['name']}"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            for key, value in env:
                if "\n" in value:
                    raise UnsupportedField(f"{where}: env {key} has a newline (env-file limit)")
                handle.write(f"{key}={value}\n")
        env_files.append(env_file)
        argv.append(f"--env-file={env_file}")

        for mount in container.get("volumeMounts", []):
            _only(mount, {"name", "mountPath", "readOnly", "subPath"}, f"{where}.volumeMounts")
            if mount["name"] not in volumes:
                raise PodStartError(f"{where}: volumeMount {mount['name']!r} has no volume")
            host, read_only = volumes[mount["name"]]
            if mount.get("subPath"):
                host = host / mount["subPath"]
            mode = "ro" if read_only or mount.get("readOnly") else "rw"
            argv.append(f"--volume={host}:{mount['mountPath']}:{mode}")
        if automount:
            if cluster.service_account_dir is None:
                raise PodStartError(f"{where}: automounted ServiceAccount token, none configured")
            argv.append(f"--volume={cluster.service_account_dir}:{SERVICE_ACCOUNT_DIR}:ro")

        command = container.get("command")
        args = container.get("args")
        if command is not None:
            argv.append(f"--entrypoint={json.dumps(command)}")
            executed = list(command) + list(args or [])
        else:
            executed = list(image.get("Entrypoint") or []) + list(
                args if args is not None else image.get("Cmd") or []
            )
        argv.append(container["image"])
        argv += list(args or [])
        runs.append(ContainerRun(name, container["name"], argv, executed, command is None))
    return runs, env_files


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def run_pod(doc: Dict[str, Any], cluster: Cluster, timeout: float = 600) -> PodResult:
    """Runs the pod's containers one after another; stops at the first failure (like a pod)."""
    with tempfile.TemporaryDirectory(prefix="podrun-") as scratch:
        scratch_dir = Path(scratch)
        scratch_dir.chmod(0o755)
        runs, _ = translate(doc, cluster, scratch_dir)
        result = PodResult(pod_spec(doc)[0], runs, [], [])
        for run in runs:
            done = subprocess.run(
                run.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
            result.exit_codes.append(done.returncode)
            result.logs.append(done.stdout)
            if done.returncode != 0:
                break
        return result


def main(argv: List[str]) -> int:
    """Prints the podman commands for one pod or Job of a rendered manifest (no secrets)."""
    manifest, wanted = argv
    docs = [d for d in yaml.safe_load_all(Path(manifest).read_text()) if d]
    cluster = Cluster(namespace="default")
    cluster.add_manifest_objects(docs)
    doc = next(d for d in docs if d["kind"] in ("Pod", "Job") and d["metadata"]["name"] == wanted)
    with tempfile.TemporaryDirectory() as scratch:
        for run in translate(doc, cluster, Path(scratch))[0]:
            print(shlex.join(run.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
