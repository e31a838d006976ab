#!/usr/bin/env bash
# The nodes of a control plane hack/cluster/up.sh started: node cpu-1, registered and run by the
# node agent (hack/cluster/node_agent.py: the chart's pods in podman), and kwok's GPU nodes
# (hack/cluster/nodes.yaml). The agent stops with hack/cluster/down.sh STATE_DIR.
#
# Usage: hack/cluster/nodes.sh STATE_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$(cd "$1" && pwd)"
# shellcheck disable=SC1091
source "$state/env"
log_prefix=nodes
# shellcheck source=hack/podman-env.sh
. "$here/../podman-env.sh" # the agent's podman calls (podrun.py)
# shellcheck source=hack/lib/background.sh
. "$here/../lib/background.sh"
kubectl=("$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG")
start node-agent "$repo/.venv/bin/python" "$here/node_agent.py" \
  --kubeconfig "$CLUSTER_NODE_KUBECONFIG" --node cpu-1 --state "$state"
"${kubectl[@]}" apply -f "$here/nodes.yaml" > /dev/null
# The agent registers cpu-1 itself: `wait --all` alone would not wait for a node not there yet.
wait_for "node cpu-1 registered" 60 "${kubectl[@]}" get node cpu-1
"${kubectl[@]}" wait --for=condition=Ready node --all --timeout=90s > /dev/null
"${kubectl[@]}" get nodes -L nvidia.com/gpu.present,pool,tao-kfp.e2e/agent
