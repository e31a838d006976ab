#!/usr/bin/env bash
# Build (or reuse) Kubeflow Pipelines' own backend binaries at one release (the Go module
# hack/kfp-server/TAG: API server, ScheduledWorkflow controller and, where that release needs
# it, the persistence agent) and SeaweedFS (hack/kfp-server/seaweedfs) into caches outside the
# repo keyed by the pinned versions. Prints KEY=VALUE lines on stdout (the rest goes to stderr).
#
# Usage: build.sh [TAG]    TAG: a folder of hack/kfp-server (default $KFP_TAG, else 2.0.5)
#
# KFP source: the Go module proxy (2.0.5), or, where the proxy does not serve the pinned commit
# (2.17.0 here: it answers 403 "This module version is not available"), a checkout of that
# commit given as KFP_SOURCE_DIR (git archive of kubeflow/pipelines at the commit; see
# docs/kfp-server-harness.md). The pins in go.mod are the same either way: a go.work outside the
# repo points the root module and its nested api and kubernetes_platform modules at the checkout,
# which is what KFP's own replace directives do at the tag.
#
# Environment: TAO_KFP_CACHE (default ~/.cache/tao-kfp), KFP_SOURCE_DIR (optional; default
# $TAO_KFP_CACHE/kfp-server/<pseudo-version>/src when that holds a checkout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TAO_KFP_CACHE:-$HOME/.cache/tao-kfp}"
tag="${1:-${KFP_TAG:-2.0.5}}"
module="$here/$tag"
[[ -f "$module/go.mod" ]] || {
  echo "kfp-server build: no module for KFP $tag (hack/kfp-server/$tag/go.mod); known: $(cd "$here" && echo 2.*)" >&2
  exit 1
}

read -r kfp_version tools < <(cd "$module" && GOWORK=off go mod edit -json | python3 -c '
import json, sys
mod = json.load(sys.stdin)
version = next(r["Version"] for r in mod["Require"] if r["Path"] == "github.com/kubeflow/pipelines")
print(version, " ".join(t["Path"] for t in mod.get("Tool") or []))')
# The release commit in full, as the release image's COMMIT_SHA (the pseudo-version has 12 digits).
commit="$(sed -n 's|^// KFP [0-9.]* = commit \([0-9a-f]\{40\}\).*|\1|p' "$module/go.mod")"
[[ "$commit" == "${kfp_version##*-}"* ]] || {
  echo "kfp-server build: $tag/go.mod names commit '$commit', its pin is $kfp_version" >&2
  exit 1
}
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
if (cd "$module" && GOWORK=off GOFLAGS=-mod=readonly go mod download github.com/kubeflow/pipelines 2> /dev/null); then
  work=off
  src="$(cd "$module" && GOWORK=off go list -m -f '{{.Dir}}' github.com/kubeflow/pipelines)"
elif [[ -n "${KFP_SOURCE_DIR:-}" ]]; then
  src="$(cd "$KFP_SOURCE_DIR" && pwd)"
  [[ -f "$src/backend/src/apiserver/main.go" ]] || {
    echo "KFP_SOURCE_DIR=$src is not a kubeflow/pipelines checkout (no backend/src/apiserver)" >&2
    exit 1
  }
  # up.sh applies the CRDs and RBAC from the tree's manifests: fail here, before any start.
  [[ -d "$src/manifests/kustomize/base/pipeline" ]] || {
    echo "KFP_SOURCE_DIR=$src has no manifests/kustomize (up.sh applies KFP's CRDs and RBAC from it):" >&2
    echo "  give a tree with paths go.mod go.sum backend api kubernetes_platform manifests/kustomize VERSION" >&2
    exit 1
  }
  work="$kfp_out/go.work"
  cat > "$work" << WORK
go $(cd "$module" && GOWORK=off go mod edit -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Go"])')

use $module

replace (
	github.com/kubeflow/pipelines => $src
	github.com/kubeflow/pipelines/api => $src/api
	github.com/kubeflow/pipelines/kubernetes_platform => $src/kubernetes_platform
)
WORK
  # The workspace reads checksums from go.work.sum: start it from the pinned ones.
  cp "$module/go.sum" "$kfp_out/go.work.sum"
else
  echo "kfp-server build: the Go module proxy does not serve github.com/kubeflow/pipelines@$kfp_version (KFP $tag, commit $commit)." >&2
  echo "Give a checkout of that commit as KFP_SOURCE_DIR (docs/kfp-server-harness.md), or use KFP_TAG=2.0.5." >&2
  exit 1
fi

missing=()
for tool in $tools; do [[ -x "$kfp_out/bin/${tool##*/}" ]] || missing+=("$tool"); done
if [[ ${#missing[@]} == 0 ]]; then
  echo "kfp-server build: KFP $tag ($kfp_version) cached in $kfp_out/bin" >&2
else
  echo "kfp-server build: building KFP $tag ($kfp_version): ${missing[*]##*/} (cold: many minutes on 2 cores)" >&2
  mkdir -p "$kfp_out/bin"
  (cd "$module" && GOWORK="$work" GOFLAGS=-mod=readonly timed "KFP $tag" nice go build -trimpath \
    -ldflags="-s -w" -o "$kfp_out/bin/" "${missing[@]}")
  if [[ "$work" != off ]] && ! cmp -s "$module/go.sum" "$kfp_out/go.work.sum"; then
    echo "kfp-server build: checksums beyond hack/kfp-server/$tag/go.sum were added; to pin them:" >&2
    echo "  cp $kfp_out/go.work.sum $module/go.sum" >&2
  fi
fi

weed_version="$(cd "$here/seaweedfs" && GOWORK=off go list -m -f '{{.Version}}' github.com/seaweedfs/seaweedfs)"
weed_out="$cache/seaweedfs/$weed_version"
if [[ -x "$weed_out/bin/weed" ]]; then
  echo "kfp-server build: SeaweedFS $weed_version cached in $weed_out/bin" >&2
else
  echo "kfp-server build: building SeaweedFS $weed_version (cold: many minutes on 2 cores)" >&2
  mkdir -p "$weed_out/bin"
  (cd "$here/seaweedfs" && GOWORK=off GOFLAGS=-mod=readonly timed "SeaweedFS $weed_version" nice go build \
    -trimpath -ldflags="-s -w" -o "$weed_out/bin/" github.com/seaweedfs/seaweedfs/weed)
fi

echo "KFP_TAG=$tag"
echo "KFP_VERSION=$kfp_version"
echo "KFP_COMMIT=$commit"
echo "KFP_SRC=$src"
echo "KFP_BIN=$kfp_out/bin"
echo "WEED_BIN=$weed_out/bin"
