#!/usr/bin/env bash
# `make e2e-kfp`: build (or reuse) KFP's own backend at one release and its dependencies, start
# them, run the kfp_server-marked suite against them, stop everything, and print the time of
# each phase. Any missing part fails the run; the suite skips nothing.
#
# The release: KFP_TAG; default 2.0.5 (Kubeflow 1.8, the one the Go module proxy serves), or the
# newest module under hack/kfp-server when KFP_SOURCE_DIR gives a source tree (2.17.0).
# Each pass also runs the chart's helm lifecycle against the server (tests/kfp_server/
# test_helm_real_server.py): its hook Jobs run in the tools image (E2E_REGISTRY/tools, built or
# reused here as make e2e builds it) on the node agent's node of the pass's control plane.
#
# Environment: as up.sh (KFP_MULTI_USER, CLUSTER_ENV) and build.sh (KFP_SOURCE_DIR,
# TAO_KFP_CACHE); E2E_REGISTRY (default localhost/tao-kfp-e2e); PYTEST_ARGS adds pytest
# arguments to every pytest phase (e.g. "-k healthz").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=hack/podman-env.sh
. "$repo/hack/podman-env.sh"
export E2E_REGISTRY="${E2E_REGISTRY:-localhost/tao-kfp-e2e}"
E2E_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$repo/Chart.yaml")"
export E2E_VERSION
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

helm_tests=tests/kfp_server/test_helm_real_server.py
suite() { # suite MARKER PATH [PYTEST_ARGS...]: pytest on the running server
  local status=0
  # shellcheck disable=SC2086
  env KFP_SERVER_ENV="$state/kfp.env" "$repo/.venv/bin/pytest" -p no:cacheprovider -m "$@" \
    ${PYTEST_ARGS:-} || status=$?
  # PYTEST_ARGS may select nothing in one phase (e.g. "-k healthz" in the helm phase).
  [[ $status == 5 && -n "${PYTEST_ARGS:-}" ]] && return 0
  return $status
}

phase build "$here/build.sh" > /dev/null
phase images "$repo/hack/tools-image.sh" "$E2E_REGISTRY" > /dev/null
# Two passes, each on a server (and control plane) of its own: standalone, then multi-user.
phase up "$here/up.sh" "$state"
phase tests suite kfp_server tests/kfp_server --ignore="$helm_tests"
phase helm suite kfp_server "$helm_tests"
phase down "$here/down.sh" "$state"
phase up-mu env KFP_MULTI_USER=true "$here/up.sh" "$state"
phase tests-mu suite kfp_server_multi_user tests/kfp_server --ignore="$helm_tests"
phase helm-mu suite kfp_server_multi_user "$helm_tests"
