#!/usr/bin/env bash
# Build a Debian bookworm base image with python3 from Debian's packages (debootstrap + import),
# for machines that cannot pull from any registry. The images build on it with
#   PYTHON_IMAGE=<the printed tag> make images
#
# Usage: hack/build-base-image.sh [TAG]     (default: localhost/tao-kfp/debian-python:bookworm)
# Environment:
#   CONTAINER_ENGINE  podman (default) or docker
#   DEBIAN_MIRROR     default: the first deb.debian.org-style URI in this machine's apt sources
#   REBUILD=1         rebuild even when TAG exists
# Needs root and debootstrap (apt-get install debootstrap). Takes 1-3 minutes, ~250 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/podman-env.sh
. hack/podman-env.sh

tag="${1:-localhost/tao-kfp/debian-python:bookworm}"
engine="${CONTAINER_ENGINE:-podman}"
# python3-venv: the Dockerfiles make their build tools' venv with `python3 -m venv`.
packages="python3,python3-venv,ca-certificates"

if [[ "${REBUILD:-0}" != 1 ]] && "$engine" image exists "$tag" 2> /dev/null; then
  echo "build-base-image: $tag exists (REBUILD=1 to rebuild)"
  exit 0
fi
command -v debootstrap > /dev/null || {
  echo "build-base-image: debootstrap is missing: apt-get install -y debootstrap" >&2
  exit 1
}
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(grep -rhoE '^(URIs:|deb) *https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2> /dev/null \
    | grep -oE 'https?://[^ ]+' | head -n 1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d /var/tmp/tao-kfp-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "build-base-image: debootstrap bookworm from $mirror with $packages"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || {
  tail -n 20 "$rootfs.log" >&2
  echo "build-base-image: debootstrap failed (full log: $rootfs.log)" >&2
  exit 1
}
rm -f "$rootfs.log"
# apt lists and caches are not needed in an image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag"
echo "build-base-image: built $tag"
