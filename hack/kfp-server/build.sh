#!/usr/bin/env bash
# Build (or reuse) Kubeflow Pipelines' API server and ScheduledWorkflow controller (module
# hack/kfp-server) and SeaweedFS (hack/kfp-server/seaweedfs) into caches outside the repo, keyed
# by the pinned version. Prints the KFP source directory and the two bin directories as
# KEY=VALUE lines on stdout (the rest goes to stderr).
#
# KFP source: the Go module proxy, or, where the proxy does not serve the pinned commit (2.17.0
# here: it answers 403 "This module version is not available"), a checkout of that commit given
# as KFP_SOURCE_DIR (git archive of kubeflow/pipelines at the commit; see
# docs/kfp-server-harness.md). The pins in go.mod are the same either way: a go.work outside the
# repo points the root module and its nested api and kubernetes_platform modules at the checkout,
# which is what KFP's own replace directives do at the tag.
#
# Environment: TAO_KFP_CACHE (default ~/.cache/tao-kfp), KFP_SOURCE_DIR (optional; default
# $TAO_KFP_CACHE/kfp-server/<pseudo-version>/src when that holds a checkout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TAO_KFP_CACHE:-$HOME/.cache/tao-kfp}"

kfp_version="$(cd "$here" && GOWORK=off go mod edit -json | python3 -c \
  'import json,sys; print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == "github.com/kubeflow/pipelines"))')"
commit="${kfp_version##*-}"
kfp_out="$cache/kfp-server/$kfp_version"
mkdir -p "$kfp_out"

timed() { # timed WHAT COMMAND...: run it and print how long it took
  local what="$1" start=$SECONDS
  shift
  "$@"
  echo "kfp-server build: $what took $((SECONDS - start)) s" >&2
}

# A checkout left in the cache by an earlier session counts as KFP_SOURCE_DIR.
if [[ -z "${KFP_SOURCE_DIR:-}" && -f "$kfp_out/src/backend/src/apiserver/main.go" ]]; then
  KFP_SOURCE_DIR="$kfp_out/src"
fi
if [[ -n "${KFP_SOURCE_DIR:-}" ]]; then
  src="$(cd "$KFP_SOURCE_DIR" && pwd)"
  [[ -f "$src/backend/src/apiserver/main.go" ]] || {
    echo "KFP_SOURCE_DIR=$src is not a kubeflow/pipelines checkout (no backend/src/apiserver)" >&2
    exit 1
  }
  work="$kfp_out/go.work"
  cat > "$work" << WORK
go 1.26

use $here

replace (
	github.com/kubeflow/pipelines => $src
	github.com/kubeflow/pipelines/api => $src/api
	github.com/kubeflow/pipelines/kubernetes_platform => $src/kubernetes_platform
)
WORK
  # The workspace reads checksums from go.work.sum: start it from the pinned ones.
  cp "$here/go.sum" "$kfp_out/go.work.sum"
else
  work=off
  src="$(cd "$here" && GOWORK=off GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' github.com/kubeflow/pipelines 2> /dev/null)" \
    || src=""
  if [[ -z "$src" ]]; then
    (cd "$here" && GOWORK=off go mod download github.com/kubeflow/pipelines) || {
      echo "The Go module proxy does not serve github.com/kubeflow/pipelines@$kfp_version (commit $commit)." >&2
      echo "Give a checkout of that commit as KFP_SOURCE_DIR (docs/kfp-server-harness.md)." >&2
      exit 1
    }
    src="$(cd "$here" && GOWORK=off go list -m -f '{{.Dir}}' github.com/kubeflow/pipelines)"
  fi
fi

if [[ -f "$kfp_out/bin/.complete" ]]; then
  echo "kfp-server build: KFP $kfp_version cached in $kfp_out/bin" >&2
else
  echo "kfp-server build: building KFP $kfp_version (cold: many minutes on 2 cores)" >&2
  mkdir -p "$kfp_out/bin"
  (cd "$here" && GOWORK="$work" GOFLAGS="" timed "KFP $kfp_version" nice go build -trimpath -ldflags="-s -w" \
    -o "$kfp_out/bin/" github.com/kubeflow/pipelines/backend/src/apiserver \
    github.com/kubeflow/pipelines/backend/src/crd/controller/scheduledworkflow)
  if [[ "$work" != off ]] && ! cmp -s "$here/go.sum" "$kfp_out/go.work.sum"; then
    echo "kfp-server build: checksums beyond hack/kfp-server/go.sum were added; to pin them:" >&2
    echo "  cp $kfp_out/go.work.sum $here/go.sum" >&2
  fi
  touch "$kfp_out/bin/.complete"
fi

weed_version="$(cd "$here/seaweedfs" && GOWORK=off go list -m -f '{{.Version}}' github.com/seaweedfs/seaweedfs)"
weed_out="$cache/seaweedfs/$weed_version"
if [[ -f "$weed_out/bin/.complete" ]]; then
  echo "kfp-server build: SeaweedFS $weed_version cached in $weed_out/bin" >&2
elif [[ "${KFP_SKIP_S3_BUILD:-}" == true ]]; then
  echo "kfp-server build: SeaweedFS not built (KFP_SKIP_S3_BUILD=true)" >&2
else
  echo "kfp-server build: building SeaweedFS $weed_version (cold: many minutes on 2 cores)" >&2
  mkdir -p "$weed_out/bin"
  (cd "$here/seaweedfs" && GOWORK=off GOFLAGS=-mod=readonly timed "SeaweedFS $weed_version" nice go build \
    -trimpath -ldflags="-s -w" -o "$weed_out/bin/" tool)
  touch "$weed_out/bin/.complete"
fi

echo "KFP_VERSION=$kfp_version"
echo "KFP_COMMIT=$commit"
echo "KFP_SRC=$src"
echo "KFP_BIN=$kfp_out/bin"
echo "WEED_BIN=$weed_out/bin"
