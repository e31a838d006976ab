#!/usr/bin/env bash
# `make e2e-kfp`: build (or reuse) KFP's API server and its dependencies, start them, run the
# kfp_server-marked suite against them, stop everything, and print the time of each phase.
#
# Environment: as up.sh (KFP_MULTI_USER, CLUSTER_ENV) and build.sh (KFP_SOURCE_DIR,
# TAO_KFP_CACHE); PYTEST_ARGS adds pytest arguments (e.g. "-k healthz").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$(mktemp -d "${TMPDIR:-/tmp}/tao-kfp-server.XXXXXX")"
times=()
phase() { # phase NAME COMMAND...: run it and remember how long it took
  local name="$1" start=$SECONDS status=0
  shift
  "$@" || status=$?
  times+=("$(printf '%-8s %5d s%s' "$name" $((SECONDS - start)) "$([[ $status == 0 ]] || echo "  (failed: $status)")")")
  return $status
}
report() {
  phase down "$here/down.sh" "$state" || true
  echo "make e2e-kfp: time per phase"
  printf '  %s\n' "${times[@]}"
}
trap report EXIT

phase build "$here/build.sh" > /dev/null
phase up "$here/up.sh" "$state"
# shellcheck disable=SC2086
phase tests env KFP_SERVER_ENV="$state/kfp.env" "$repo/.venv/bin/pytest" -m kfp_server \
  tests/kfp_server ${PYTEST_ARGS:-}
