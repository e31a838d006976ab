# Sourced by hack/cluster/up.sh and hack/kfp-server/up.sh: start services in the background and
# wait for them. The caller sets `state` (a folder with run/ and log/) and `log_prefix`.
# shellcheck shell=bash

start() { # start NAME COMMAND...: in the background, pid in run/NAME.pid, output in log/NAME.log
  local name="$1"
  shift
  "$@" > "${state:?}/log/$name.log" 2>&1 &
  echo $! > "$state/run/$name.pid"
}

wait_for() { # wait_for WHAT SECONDS COMMAND...
  local what="$1" seconds="$2"
  shift 2
  for _ in $(seq "$seconds"); do
    if "$@" > /dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "${log_prefix:?}: $what not ready after ${seconds}s; see $state/log" >&2
  return 1
}
