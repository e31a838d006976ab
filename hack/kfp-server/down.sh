#!/usr/bin/env bash
# Stop what hack/kfp-server/up.sh STATE_DIR started (its own control plane too) and remove STATE_DIR.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$1"
for name in persistenceagent scheduledworkflow apiserver seaweedfs mariadb; do
  pid_file="$state/run/$name.pid"
  if [[ -f "$pid_file" ]]; then
    pid="$(cat "$pid_file")"
    kill "$pid" 2> /dev/null
    for _ in $(seq 30); do kill -0 "$pid" 2> /dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2> /dev/null
  fi
done
if [[ -f "$state/run/cluster.owned" ]]; then
  "$repo/hack/cluster/down.sh" "$(cat "$state/run/cluster.owned")"
fi
rm -rf "$state"
