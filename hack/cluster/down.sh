#!/usr/bin/env bash
# Stop what hack/cluster/up.sh STATE_DIR started (by the pids it recorded) and remove STATE_DIR.
# Usage: hack/cluster/down.sh STATE_DIR [--keep]   (--keep leaves the folder, logs included)
set -uo pipefail
state="$1"
[[ -d "$state/run" ]] || exit 0
# Reverse start order: the agents and kwok first, etcd last.
for name in kubelet containerd node-agent local-path-provisioner kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pid_file="$state/run/$name.pid"
  [[ -f "$pid_file" ]] || continue
  pid="$(cat "$pid_file")"
  if kill "$pid" 2> /dev/null; then
    for _ in $(seq 20); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2> /dev/null || true
  fi
  rm -f "$pid_file"
done
# The kubelet (hack/cluster/kubelet.sh) bind-mounts its root and mounts pod volumes under it.
state_path="$(cd "$state" && pwd)"
awk -v dir="$state_path/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount
if [[ -d "$state/kubelet" ]]; then # its CNI bridge and the addresses host-local handed out
  ip link delete cni-e2e0 2> /dev/null || true
  rm -rf /var/lib/cni/networks/e2e
fi
if [[ "${2:-}" != "--keep" ]]; then rm -rf "$state"; fi
