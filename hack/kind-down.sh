#!/usr/bin/env bash
# Delete the kind cluster made by hack/kind-up.sh (with KFP, the release and the workspace
# data in it). Idempotent: a cluster that does not exist is not an error.
#
# Usage: hack/kind-down.sh          (or: make kind-down)
# Environment: KIND_CLUSTER_NAME [tao-kfp]
set -euo pipefail
cd "$(dirname "$0")/.."

cluster="${KIND_CLUSTER_NAME:-tao-kfp}"

if ! command -v kind > /dev/null 2>&1; then
  echo "kind-down: kind is not installed (https://kind.sigs.k8s.io); nothing to delete" >&2
  exit 1
fi
# kind talks to podman only when told; use it when docker is absent.
if ! command -v docker > /dev/null 2>&1 && command -v podman > /dev/null 2>&1; then
  export KIND_EXPERIMENTAL_PROVIDER=podman
fi

if kind get clusters 2> /dev/null | grep -qx "$cluster"; then
  echo "kind-down: deleting kind cluster '$cluster'"
  kind delete cluster --name "$cluster"
else
  echo "kind-down: no kind cluster named '$cluster'; nothing to do"
fi
