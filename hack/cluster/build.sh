#!/usr/bin/env bash
# Build (or reuse) the cluster binaries of `make e2e-cluster` from the Go modules under
# hack/cluster/: Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl, etcd), kwok and local-path-provisioner. Each goes to a cache outside the repo keyed by
# the module's pinned version, so a warm start only checks that the files are there.
#
# Usage: hack/cluster/build.sh        prints the bin directory (one line) on stdout
# Environment: TAO_KFP_CACHE (default ~/.cache/tao-kfp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TAO_KFP_CACHE:-$HOME/.cache/tao-kfp}"
bin="$cache/cluster-bin"
mkdir -p "$bin"

required_version() { # required_version MODULE_DIR MODULE_PATH: the version go.mod pins
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}

build() { # build MODULE_DIR KEY PACKAGES [GO BUILD FLAGS...]: PACKAGES ("tool": every tool of
  # the module's go.mod) into $cache/KEY/bin
  local dir="$1" key="$2" packages="$3" out="$cache/$2/bin"
  shift 3
  if [[ -f "$out/.complete" ]]; then
    echo "cluster build: $key cached in $out" >&2
  else
    echo "cluster build: building $key (cold: minutes on 2 cores)" >&2
    local start=$SECONDS
    mkdir -p "$out"
    # shellcheck disable=SC2086 # PACKAGES is a list
    (cd "$here/$dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath "$@" -o "$out/" $packages)
    # go names a /vN module's binary after the element before the suffix: etcd's server is "server"
    if [[ -f "$out/server" ]]; then mv "$out/server" "$out/etcd"; fi
    touch "$out/.complete"
    echo "cluster build: $key built in $((SECONDS - start)) s" >&2
  fi
  ln -sf "$out"/* "$bin/"
}

k8s="$(required_version "$here/k8s" k8s.io/kubernetes)"
k8s_minor="$(cut -d. -f2 <<< "$k8s")"
# What the release's own hack/lib/version.sh stamps, so /version, helm's kubeVersion checks and
# the kubelet's version-skew checks see the release, not v0.0.0-master.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done
k8s_commands="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager"
k8s_commands+=" k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3"
build k8s "k8s-$k8s" "$k8s_commands" -ldflags="$ldflags"
# The kubelet (docs/cluster-harness.md, "Kubelet attempt") only when asked: the suite's node
# agent does not need it, and it adds minutes to a cold build.
if [[ "${CLUSTER_KUBELET:-0}" == 1 ]]; then
  build k8s "kubelet-$k8s" k8s.io/kubernetes/cmd/kubelet -ldflags="$ldflags"
fi
build kwok "kwok-$(required_version "$here/kwok" sigs.k8s.io/kwok)" tool -ldflags="-s -w"
build local-path "local-path-provisioner-$(required_version "$here/local-path" github.com/rancher/local-path-provisioner)" tool -ldflags="-s -w"
echo "$bin"
