#!/usr/bin/env bash
# `make e2e-kfp`: build (or reuse) KFP's own backend at one release and its dependencies, start
# them, run the kfp_server-marked suite against them, stop everything, and print the time of
# each phase. Any missing part fails the run; the suite skips nothing.
#
# The release: KFP_TAG; default 2.0.5 (Kubeflow 1.8, the one the Go module proxy serves), or the
# newest module under hack/kfp-server when KFP_SOURCE_DIR gives a source tree (2.17.0).
# Environment: as up.sh (KFP_MULTI_USER, CLUSTER_ENV) and build.sh (KFP_SOURCE_DIR,
# TAO_KFP_CACHE); PYTEST_ARGS adds pytest arguments (e.g. "-k healthz").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${KFP_TAG:-}" ]]; then
  KFP_TAG=2.0.5
  [[ -z "${KFP_SOURCE_DIR:-}" ]] || KFP_TAG="$(cd "$here" && printf '%s\n' 2.* | sort -V | tail -1)"
fi
export KFP_TAG
echo "make e2e-kfp: KFP $KFP_TAG" >&2
state="$(mktemp -d "${TMPDIR:-/tmp}/tao-kfp-server.XXXXXX")"
times=()
phase() { # phase NAME COMMAND...: run it and remember how long it took
  local name="$1" start=$SECONDS status=0
  shift
  "$@" || status=$?
  times+=("$(printf '%-9s %5d s%s' "$name" $((SECONDS - start)) "$([[ $status == 0 ]] || echo "  (failed: $status)")")")
  return $status
}
report() {
  local status=$?
  if [[ $status != 0 && -d "$state/log" ]]; then # keep the logs of a failed run
    rm -rf "$repo/out/e2e-kfp/log" && mkdir -p "$repo/out/e2e-kfp" && cp -r "$state/log" "$repo/out/e2e-kfp/log"
    echo "make e2e-kfp: logs kept in out/e2e-kfp/log" >&2
  fi
  [[ ! -d "$state" ]] || phase down "$here/down.sh" "$state" || true
  echo "make e2e-kfp: KFP $KFP_TAG, time per phase"
  printf '  %s\n' "${times[@]}"
}
trap report EXIT

phase build "$here/build.sh" > /dev/null
# Two passes, each on a server (and control plane) of its own: standalone, then multi-user.
phase up "$here/up.sh" "$state"
# shellcheck disable=SC2086
phase tests env KFP_SERVER_ENV="$state/kfp.env" "$repo/.venv/bin/pytest" -m kfp_server \
  tests/kfp_server ${PYTEST_ARGS:-}
phase down "$here/down.sh" "$state"
phase up-mu env KFP_MULTI_USER=true "$here/up.sh" "$state"
# shellcheck disable=SC2086
phase tests-mu env KFP_SERVER_ENV="$state/kfp.env" "$repo/.venv/bin/pytest" \
  -m kfp_server_multi_user tests/kfp_server ${PYTEST_ARGS:-}
