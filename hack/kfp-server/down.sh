#!/usr/bin/env bash
# Stop what hack/kfp-server/up.sh STATE_DIR started (its own control plane too) and remove STATE_DIR.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$1"
pids=()
for name in persistenceagent scheduledworkflow apiserver seaweedfs mariadb; do
  pid_file="$state/run/$name.pid"
  [[ -f "$pid_file" ]] && kill "$(cat "$pid_file")" 2> /dev/null && pids+=("$(cat "$pid_file")")
done
# All were asked to stop at once; give them 15 s together, then stop the rest hard.
for _ in $(seq 30); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && alive=1; done
  [[ $alive == 1 ]] || break
  sleep 0.5
done
for pid in "${pids[@]}"; do kill -9 "$pid" 2> /dev/null; done
if [[ -f "$state/run/cluster.owned" ]]; then
  "$repo/hack/cluster/down.sh" "$(cat "$state/run/cluster.owned")"
fi
rm -rf "$state"
