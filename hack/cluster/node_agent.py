"""A node agent for `make e2e-cluster`: runs, in podman, each pod the real scheduler bound to its
node, and reports the pod's status back through the API, as a kubelet's status manager does.

Why not a kubelet: see docs/cluster-harness.md ("Why a node agent"). What it does:

- registers its Node (labels tao-kfp.e2e/agent=true, kubernetes.io/hostname) with capacity,
  Ready condition and a Lease it renews (kube-controller-manager's node lifecycle controller
  taints a node whose Lease expires), authenticating as ``system:node:<name>`` (group
  ``system:nodes``), so the Node authorizer and the NodeRestriction admission plugin limit it
  exactly as they limit a kubelet: it reads only the Secrets, ConfigMaps, claims and volumes of
  pods bound to it, requests ServiceAccount tokens bound to those pods, and writes only their
  status;
- for each Pending pod bound to it: sets it Running, resolves what the kubelet would (Secrets,
  ConfigMaps, the claim's volume as a host folder, ServiceAccount tokens from the TokenRequest
  API for the automounted token and every projected token audience), runs the containers with
  hack/podrun.py (which refuses fields it does not know) and writes phase Succeeded/Failed with
  each container's exit code;
- finishes the deletion of pods with a deletionTimestamp (stops their containers, deletes with
  grace period 0), as a kubelet does.

The pod's output goes to STATE_DIR/pod-logs/<namespace>_<pod>.log (the API's pods/log needs a
kubelet server; the suite reads the files).

Usage: python hack/cluster/node_agent.py --kubeconfig KUBECONFIG --node NAME --state STATE_DIR
"""

from __future__ import annotations

import argparse
import base64
import datetime
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Optional

from kubernetes import client, config
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = 10
TOKEN_SECONDS = 3600
# What the API server and its admission plugins add to a pod that podrun has nothing to do
# with (scheduling, DNS, termination, defaults): dropped before the spec reaches podrun.
_SERVER_POD_FIELDS = {
    "nodeName",
    "schedulerName",
    "dnsPolicy",
    "terminationGracePeriodSeconds",
    "tolerations",
    "enableServiceLinks",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "serviceAccount",
    "nodeSelector",
    "affinity",
}
_SERVER_CONTAINER_FIELDS = {"terminationMessagePath", "terminationMessagePolicy"}


def _load_podrun():
    spec = importlib.util.spec_from_file_location("podrun", ROOT / "hack" / "podrun.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["podrun"] = module
    spec.loader.exec_module(module)
    return module


podrun = _load_podrun()


def spawn(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Agent:
    def __init__(self, kubeconfig: str, node: str, state: Path):
        config.load_kube_config(kubeconfig)
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.coord = client.CoordinationV1Api(self.api)
        self.node, self.state = node, state
        self.server = self.api.configuration.host  # https://127.0.0.1:PORT
        self.ca = Path(self.api.configuration.ssl_ca_cert).read_text()
        self.started: Dict[str, threading.Thread] = {}
        self.deleting: Dict[str, threading.Thread] = {}
        (state / "pod-logs").mkdir(parents=True, exist_ok=True)

    # -- the node ---------------------------------------------------------------------------------

    def register(self) -> None:
        body = {
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "tao-kfp.e2e/agent": "true",
                },
            }
        }
        try:
            self.core.create_node(body)
        except ApiException as err:
            if err.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        stamp = now()
        capacity = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "NodeAgentReady",
                    "message": "tao-kfp e2e node agent (podman)",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "node-agent",
                "containerRuntimeVersion": "podman://",
                "operatingSystem": "linux",
                "architecture": "amd64",
                **{
                    k: ""
                    for k in (
                        "machineID",
                        "systemUUID",
                        "bootID",
                        "kernelVersion",
                        "osImage",
                        "kubeProxyVersion",
                    )
                },
            },
        }
        self.core.patch_node_status(self.node, {"status": status})
        lease = {
            "metadata": {"name": self.node, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node,
                "leaseDurationSeconds": 40,
                "renewTime": datetime.datetime.now(datetime.timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
            },
        }
        try:
            self.coord.patch_namespaced_lease(self.node, "kube-node-lease", lease)
        except ApiException as err:
            if err.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", lease)

    # -- pods -------------------------------------------------------------------------------------

    def loop(self) -> None:
        # The heartbeat has a thread of its own and every podman call runs in a pod's thread:
        # a podman command that waits (image store locks held by a build) must neither let the
        # Lease expire (the node lifecycle controller would taint the node unreachable) nor stop
        # other pods from starting.
        spawn(self.beat)
        while True:
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - a kubelet keeps going after an API error
                traceback.print_exc()
            time.sleep(1)

    def beat(self) -> None:
        while True:
            try:
                self.heartbeat()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            time.sleep(HEARTBEAT_SECONDS)

    def sync(self) -> None:
        """Starts each new Pending pod bound here, and each deletion, in a thread of its own."""
        pods = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.node}"
        ).items
        for pod in pods:
            uid = pod.metadata.uid
            if pod.metadata.deletion_timestamp is not None:
                # retried on the next sync once the last attempt ended (an API error)
                if uid not in self.deleting or not self.deleting[uid].is_alive():
                    self.deleting[uid] = spawn(self.finish_deletion, pod)
            elif pod.status.phase == "Pending" and uid not in self.started:
                self.started[uid] = spawn(self.run, pod)

    def finish_deletion(self, pod) -> None:
        name, namespace = pod.metadata.name, pod.metadata.namespace
        for container in pod.spec.containers + (pod.spec.init_containers or []):
            subprocess.run(
                ["podman", "rm", "-f", "-t", "5", f"{name}-{container.name}"],
                capture_output=True,
                check=False,
            )
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions={"uid": pod.metadata.uid}
                ),
            )
        except ApiException as err:
            if err.status not in (404, 409):
                raise

    def set_status(self, pod, phase: str, containers: list, message: str = "") -> None:
        ready = "True" if phase == "Running" else "False"
        status: Dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": pod.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
            if pod.status.start_time
            else now(),
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": now()},
                {"type": "Ready", "status": ready, "lastTransitionTime": now()},
            ],
            "containerStatuses": containers,
        }
        if message:
            status["message"] = message[-1000:]
            status["reason"] = "NodeAgentError" if phase == "Failed" else ""
        try:
            self.core.patch_namespaced_pod_status(
                pod.metadata.name, pod.metadata.namespace, {"status": status}
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def token(self, pod, audiences: Optional[list]) -> str:
        spec = {
            "expirationSeconds": TOKEN_SECONDS,
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": pod.metadata.name,
                "uid": pod.metadata.uid,
            },
        }
        if audiences:
            spec["audiences"] = audiences
        answer = self.core.create_namespaced_service_account_token(
            pod.spec.service_account_name or "default", pod.metadata.namespace, {"spec": spec}
        )
        return answer.status.token

    def cluster_for(self, pod, doc: Dict[str, Any], scratch: Path):
        """What the kubelet resolves for the pod, read through the API as this node."""
        namespace = pod.metadata.namespace
        spec = doc["spec"]
        host, port = self.server.split("://", 1)[1].rsplit(":", 1)
        cluster = podrun.Cluster(namespace=namespace, api_host=host, api_port=int(port))
        secret_names, config_map_names, claim_names = set(), set(), set()
        for container in spec.get("initContainers", []) + spec["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    secret_names.add(source["secretRef"]["name"])
                if "configMapRef" in source:
                    config_map_names.add(source["configMapRef"]["name"])
            for item in container.get("env", []):
                ref = item.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    secret_names.add(ref["secretKeyRef"]["name"])
                if "configMapKeyRef" in ref:
                    config_map_names.add(ref["configMapKeyRef"]["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret_names.add(volume["secret"]["secretName"])
            if "configMap" in volume:
                config_map_names.add(volume["configMap"]["name"])
            if "persistentVolumeClaim" in volume:
                claim_names.add(volume["persistentVolumeClaim"]["claimName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    secret_names.add(source["secret"]["name"])
                if "configMap" in source:
                    config_map_names.add(source["configMap"]["name"])
                if "serviceAccountToken" in source:
                    audience = source["serviceAccountToken"].get("audience")
                    key = audience or "kubernetes"
                    cluster.tokens[key] = self.token(pod, [audience] if audience else None)
        for name in secret_names:
            try:
                data = self.core.read_namespaced_secret(name, namespace).data or {}
            except ApiException as err:
                if err.status != 404:
                    raise
                continue  # podrun reports the missing Secret as the kubelet would
            cluster.secrets[name] = {k: base64.b64decode(v).decode() for k, v in data.items()}
        for name in config_map_names:
            try:
                cluster.config_maps[name] = dict(
                    self.core.read_namespaced_config_map(name, namespace).data or {}
                )
            except ApiException as err:
                if err.status != 404:
                    raise
        for name in claim_names:
            cluster.claims[name] = self.claim_folder(namespace, name)
        if doc["spec"].get("automountServiceAccountToken", True):
            sa_dir = scratch / "serviceaccount"
            sa_dir.mkdir()
            (sa_dir / "token").write_text(self.token(pod, None))
            (sa_dir / "ca.crt").write_text(self.ca)
            (sa_dir / "namespace").write_text(namespace)
            for path in [sa_dir, *sa_dir.iterdir()]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            cluster.service_account_dir = sa_dir
        return cluster

    def claim_folder(self, namespace: str, name: str):
        claim = self.core.read_namespaced_persistent_volume_claim(name, namespace)
        if claim.status.phase != "Bound":
            raise podrun.PodStartError(f"persistentvolumeclaim {name!r} is not bound")
        volume = self.core.read_persistent_volume(claim.spec.volume_name)
        source = volume.spec
        if source.host_path is not None:
            folder = Path(source.host_path.path)
        elif source.local is not None:
            folder = Path(source.local.path)
        elif source.nfs is not None:
            # No NFS server here: the export is a host folder named after server and path.
            folder = self.state / "nfs" / source.nfs.server / source.nfs.path.strip("/")
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)
        else:
            raise podrun.UnsupportedField(f"volume {volume.metadata.name}: unsupported source")
        read_only = set(claim.spec.access_modes or []) == {"ReadOnlyMany"}
        return podrun.Claim(folder, read_only=read_only)

    def podrun_doc(self, pod) -> Dict[str, Any]:
        """The pod as its author wrote it: server-side defaults and the automount volume dropped."""
        spec = self.api.sanitize_for_serialization(pod.spec)
        for key in _SERVER_POD_FIELDS:
            spec.pop(key, None)
        automount = [
            v["name"] for v in spec.get("volumes", []) if v["name"].startswith("kube-api-access-")
        ]
        spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in automount]
        if not spec["volumes"]:
            del spec["volumes"]
        spec["automountServiceAccountToken"] = bool(automount)
        for container in spec.get("initContainers", []) + spec["containers"]:
            for key in _SERVER_CONTAINER_FIELDS:
                container.pop(key, None)
            mounts = [m for m in container.get("volumeMounts", []) if m["name"] not in automount]
            container["volumeMounts"] = mounts
            if not mounts:
                del container["volumeMounts"]
            if not container.get("resources"):
                container.pop("resources", None)
        if not spec.get("securityContext"):
            spec.pop("securityContext", None)
        return {"kind": "Pod", "metadata": {"name": pod.metadata.name}, "spec": spec}

    def run(self, pod) -> None:
        name, namespace = pod.metadata.name, pod.metadata.namespace
        log_file = self.state / "pod-logs" / f"{namespace}_{name}.log"
        containers = [c.name for c in pod.spec.containers]
        running = [
            {
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now()}},
            }
            for c in pod.spec.containers
        ]
        self.set_status(pod, "Running", running)
        try:
            with tempfile.TemporaryDirectory(prefix="node-agent-") as scratch:
                scratch_dir = Path(scratch)
                scratch_dir.chmod(0o755)
                doc = self.podrun_doc(pod)
                cluster = self.cluster_for(pod, doc, scratch_dir)
                result = podrun.run_pod(doc, cluster, timeout=1800)
            log_file.write_text(result.log)
            # podrun runs init containers first, then the one container: the last code is its.
            code = result.exit_codes[-1] if result.exit_codes else 1
            phase = "Succeeded" if result.succeeded else "Failed"
            message = "" if result.succeeded else result.log[-600:]
        except Exception as err:  # noqa: BLE001 - any failure to start is the pod's failure
            code, phase = 128, "Failed"
            message = f"{type(err).__name__}: {err}"
            log_file.write_text(message + "\n" + traceback.format_exc())
        terminated = [
            {
                "name": container,
                "image": c.image,
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": now(),
                        "finishedAt": now(),
                    }
                },
            }
            for container, c in zip(containers, pod.spec.containers)
        ]
        self.set_status(pod, phase, terminated, message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    if not Path("/run/systemd/system").is_dir():
        os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "hack" / "containers.conf"))
    agent = Agent(args.kubeconfig, args.node, args.state)
    agent.register()
    agent.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
