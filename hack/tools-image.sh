#!/usr/bin/env bash
# Build (podman's layer cache makes a rebuild of unchanged sources take seconds) the tools image
# that runs every chart pod on the node agent's node, on the local Debian base image that also
# serves local-path's helper pods: REGISTRY/tools:VERSION (VERSION = Chart.yaml appVersion).
#
# Usage: hack/tools-image.sh REGISTRY
# Environment: CA_BUNDLE (default $SSL_CERT_FILE): a TLS-intercepting proxy's CA for pip/uv, as
# for hack/build-images.sh (a cache miss, e.g. after a package change, reaches PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
registry="$1"
base="localhost/tao-kfp/debian-python:bookworm"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' Chart.yaml)"
hack/build-base-image.sh "$base"
CA_BUNDLE="${CA_BUNDLE:-${SSL_CERT_FILE:-}}" CONTAINER_ENGINE=podman BUILD_NETWORK=host \
  PYTHON_IMAGE="$base" hack/build-images.sh build "$registry" "$version" tools
