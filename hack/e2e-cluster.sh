#!/usr/bin/env bash
# `make e2e-cluster`: a Kubernetes control plane built from real sources (hack/cluster/), the
# chart's whole helm lifecycle per ci/ scenario on it (tests/cluster_e2e), then tear-down.
# Fails, never skips, when a part is missing. Prints the time of each phase.
# docs/cluster-harness.md describes what runs and what each part relies on.
#
# Usage: hack/e2e-cluster.sh [PYTEST_ARGS...]
# Environment:
#   CLUSTER_DIR    state folder (certificates, etcd, logs) [${TMPDIR:-/tmp}/tao-kfp-cluster]
#   KEEP_CLUSTER=1 leave the cluster running and its folder in place (hack/cluster/down.sh)
#   E2E_REGISTRY, CA_BUNDLE, SKIP_APT as for hack/e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/podman-env.sh
. hack/podman-env.sh

state="${CLUSTER_DIR:-${TMPDIR:-/tmp}/tao-kfp-cluster}"
registry="${E2E_REGISTRY:-localhost/tao-kfp-e2e}"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' Chart.yaml)"

timings=()
phase() { # phase NAME COMMAND...: run, time and record it; stop at the first failure
  local name="$1" start code
  shift
  echo "==> e2e-cluster: $name"
  start=$SECONDS
  # In a subshell with errexit on, not under `if`/`||` (where bash ignores errexit inside the
  # phase's functions): the first failing command of a phase fails it.
  set +e
  (
    set -e
    "$@"
  )
  code=$?
  set -e
  timings+=("$(printf '%-28s %5ss' "$name" "$((SECONDS - start))")")
  if [[ $code -ne 0 ]]; then
    echo "e2e-cluster: phase '$name' failed" >&2
    exit 1
  fi
}
finish() {
  local code=$?
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    echo "e2e-cluster: cluster kept: KUBECONFIG=$state/admin.kubeconfig; stop: hack/cluster/down.sh $state"
  elif [[ -d "$state" ]]; then
    local start=$SECONDS
    # Logs of a failed run stay for reading; a passing run leaves nothing.
    if [[ $code -ne 0 ]]; then hack/cluster/down.sh "$state" --keep; else hack/cluster/down.sh "$state"; fi
    timings+=("$(printf '%-28s %5ss' "tear-down" "$((SECONDS - start))")")
    [[ $code -ne 0 ]] && echo "e2e-cluster: logs kept in $state/log and $state/pod-logs" >&2
  fi
  echo "==> e2e-cluster phase timings"
  printf '  %s\n' "${timings[@]}" "$(printf '%-28s %5ss' total "$SECONDS")"
  exit "$code"
}
trap finish EXIT

install_packages() {
  local missing=()
  local tools=(podman runc debootstrap go openssl) packages=(podman runc debootstrap openssl)
  if [[ "${CLUSTER_KUBELET:-0}" == 1 ]]; then
    tools+=(containerd gcc /usr/lib/cni/bridge)
    packages+=(containerd gcc containernetworking-plugins)
  fi
  for tool in "${tools[@]}"; do
    command -v "$tool" > /dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ " ${missing[*]} " == *" go "* ]]; then
    echo "e2e-cluster: Go (1.25 or newer) is needed to build Kubernetes: https://go.dev/dl/" >&2
    return 1
  fi
  if [[ "${SKIP_APT:-0}" == 1 ]]; then
    echo "e2e-cluster: missing ${missing[*]} and SKIP_APT=1" >&2
    return 1
  fi
  apt-get update > /dev/null && apt-get install -y --no-install-recommends "${packages[@]}" > /dev/null
}

# The tools image runs every chart pod; the base image local-path's helper pods.
build_images() { hack/tools-image.sh "$registry"; }

driver_pods() { # each pipeline task's pod as KFP's driver builds it (make kfp-backends)
  if ! compgen -G "out/kfp-backends/*/pods/*.json" > /dev/null; then
    # 2.0.5: the one backend whose KFP source the Go module proxy serves (docs/kfp-backend-harness.md)
    KFP_BACKENDS=2.0.5 hack/kfp-backends/run.sh
  fi
  local newest
  newest="$(find out/kfp-backends -path '*/pods/*.json' -printf '%h\n' | sort -uV | tail -1)"
  [[ -n "$newest" ]] || { echo "e2e-cluster: make kfp-backends wrote no pods" >&2; return 1; }
  echo "e2e-cluster: pipeline pods of KFP $(basename "$(dirname "$newest")") ($newest)"
}

if [[ -d "$state/run" ]]; then hack/cluster/down.sh "$state"; fi
phase "packages (apt)" install_packages
phase "build (go, cached)" hack/cluster/build.sh
phase "images" build_images
phase "KFP driver pods" driver_pods
phase "control plane" hack/cluster/up.sh "$state"
phase "nodes" hack/cluster/nodes.sh "$state"
suite_args=()
if [[ "${CLUSTER_KUBELET:-0}" == 1 ]]; then
  phase "kubelet (CLUSTER_KUBELET=1)" hack/cluster/kubelet.sh "$state" "$registry/tools:$version"
else
  suite_args=(--deselect tests/cluster_e2e/test_kubelet.py)
fi
export E2E_REGISTRY="$registry" E2E_VERSION="$version" CLUSTER_ENV="$state/env"
phase "suite" .venv/bin/pytest -m e2e_cluster tests/cluster_e2e -p no:cacheprovider --durations=0 "${suite_args[@]}" "$@"
