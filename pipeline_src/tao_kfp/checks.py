"""``tao-kfp check``: install checks run by ``helm test`` pods.

``check secrets`` reads Secrets through the Kubernetes API and checks that the expected keys
exist and are not empty. It prints key names only, never values.
``check gpu-nodes`` lists the nodes matching a label selector and reports those with
allocatable GPUs (or MIG slices) of the requested resource.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def add_arguments(parser):
    """Registers ``check secrets`` and ``check gpu-nodes``."""
    sub = parser.add_subparsers(dest="check_command", required=True, metavar="CHECK")
    secrets = sub.add_parser(
        "secrets", help="Secrets exist with the expected keys (no values shown)"
    )
    secrets.add_argument(
        "--secret",
        action="append",
        required=True,
        type=_parse_secret_spec,
        metavar="NAME:KEY[,KEY]",
        help="a Secret and the keys it must have; repeatable",
    )
    secrets.add_argument("--namespace", help="namespace of the Secrets (default: the pod's own)")
    gpu = sub.add_parser("gpu-nodes", help="a node matches the selector with allocatable GPUs")
    gpu.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="node label that GPU steps select; repeatable",
    )
    gpu.add_argument("--resource", default="nvidia.com/gpu", help="extended resource name")


def _parse_secret_spec(text: str) -> Tuple[str, List[str]]:
    name, sep, keys = text.partition(":")
    key_list = [key for key in keys.split(",") if key]
    if not name or not sep or not key_list:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY[,KEY], got {text!r}")
    return name, key_list


def run(args) -> int:
    """Runs ``check secrets`` or ``check gpu-nodes`` against the cluster."""
    from kubernetes import client

    _load_config()
    api = client.CoreV1Api()
    if args.check_command == "secrets":
        namespace = args.namespace or _own_namespace()
        problems = check_secrets(api, namespace, args.secret)
    else:
        problems = check_gpu_nodes(api, args.selector, args.resource)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


def _load_config() -> None:
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        # Outside a pod (a developer's shell): the current kubeconfig context.
        config.load_kube_config()


def _own_namespace() -> str:
    try:
        return _SA_NAMESPACE.read_text().strip()
    except OSError:
        return "default"


def check_secrets(api, namespace: str, specs: Sequence[Tuple[str, List[str]]]) -> List[str]:
    """Returns one problem per missing Secret, missing key or empty key (empty list = all fine).

    ``api`` is a ``kubernetes.client.CoreV1Api``. Only key names are ever printed.
    """
    from kubernetes.client.exceptions import ApiException

    problems = []
    for name, keys in specs:
        try:
            secret = api.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            problems.append(_secret_api_problem(exc.status, name, namespace))
            continue
        data: Dict[str, str] = dict(secret.data or {})
        data.update(secret.string_data or {})
        missing = [key for key in keys if key not in data]
        empty = [key for key in keys if key in data and not data[key]]
        if missing:
            have = ", ".join(sorted(data)) or "no keys"
            problems.append(
                f"Secret {namespace}/{name} lacks key(s) {', '.join(missing)} (it has: {have}):"
                " add them, or point ngc.secretKeys.apiKey/modelKey at the keys it has"
            )
        if empty:
            problems.append(
                f"Secret {namespace}/{name} has empty key(s) {', '.join(empty)}: set a value"
            )
        if not missing and not empty:
            print(f"ok: Secret {namespace}/{name} has {', '.join(keys)}")
    return problems


def _secret_api_problem(status, name: str, namespace: str) -> str:
    if status == 404:
        return (
            f"Secret {namespace}/{name} not found: create it (kubectl create secret -n"
            f" {namespace} ...) or fix ngc.existingSecret / ngc.existingPullSecret /"
            " imagePullSecrets"
        )
    if status == 403:
        return (
            f"not allowed to read Secret {namespace}/{name}: the test's Role lists the Secret"
            " names it may get; re-run `helm upgrade` so the Role matches the values"
        )
    return f"reading Secret {namespace}/{name} failed with HTTP {status}"


def check_gpu_nodes(api, selectors: Sequence[str], resource: str) -> List[str]:
    """Returns a problem when no node matching ``selectors`` has allocatable ``resource``."""
    from kubernetes.client.exceptions import ApiException

    label_selector = ",".join(selectors)
    try:
        nodes = api.list_node(label_selector=label_selector or None).items
    except ApiException as exc:
        return [
            f"listing nodes failed with HTTP {exc.status}: the gpuNodes test needs its"
            " ClusterRole (list nodes); re-run `helm upgrade` with tests.gpuNodes.enabled=true"
        ]
    shown = label_selector or "(no selector)"
    if not nodes:
        return [
            f"no node has the labels {shown}: install the NVIDIA GPU Operator (GPU feature"
            " discovery sets nvidia.com/gpu.present) or set gpu.nodeSelector to your GPU nodes'"
            " labels"
        ]
    with_gpus = []
    for node in nodes:
        allocatable = (node.status.allocatable or {}) if node.status else {}
        count = _quantity_to_int(allocatable.get(resource, "0"))
        print(f"node {node.metadata.name}: allocatable {resource} = {count}")
        if count > 0:
            with_gpus.append(node.metadata.name)
    if not with_gpus:
        return [
            f"{len(nodes)} node(s) match {shown} but none has allocatable {resource}: check the"
            " NVIDIA device plugin (kubectl describe node), the MIG strategy, or gpu.resource"
        ]
    print(f"ok: {len(with_gpus)} node(s) with {resource}: {', '.join(with_gpus)}")
    return []


def _quantity_to_int(value) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
