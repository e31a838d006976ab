#!/usr/bin/env bash
# `make e2e`: build the images on a Debian base made here and run every chart pod and the
# whole pipeline in podman containers (tests/e2e). Sets up what it needs and fails, never
# skips, when it cannot. Prints the time of each phase.
#
# Usage: hack/e2e.sh [PYTEST_ARGS...]
# Environment:
#   E2E_REGISTRY   tag prefix of the images built for e2e (default localhost/tao-kfp-e2e)
#   CA_BUNDLE      CA bundle for pip/uv in the builds (default: $SSL_CERT_FILE when set)
#   WHEELHOUSE     local wheels, e.g. the torch CPU wheel (default: /opt/wheels when present)
#   SKIP_APT=1     do not apt-get install podman runc debootstrap (they must be there)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/podman-env.sh
. hack/podman-env.sh

registry="${E2E_REGISTRY:-localhost/tao-kfp-e2e}"
base="localhost/tao-kfp/debian-python:bookworm"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' Chart.yaml)"
export CONTAINER_ENGINE=podman BUILD_NETWORK=host
export CA_BUNDLE="${CA_BUNDLE:-${SSL_CERT_FILE:-}}"
if [[ -z "${WHEELHOUSE:-}" && -d /opt/wheels ]]; then export WHEELHOUSE=/opt/wheels; fi

timings=()
phase() { # phase NAME COMMAND...: run, time and record it; stop at the first failure
  local name="$1" start end
  shift
  echo "==> e2e: $name"
  start=$(date +%s)
  if ! "$@"; then
    echo "e2e: phase '$name' failed" >&2
    exit 1
  fi
  end=$(date +%s)
  timings+=("$(printf '%-28s %5ss' "$name" "$((end - start))")")
}
report() {
  echo "==> e2e phase timings"
  printf '  %s\n' "${timings[@]}"
}
trap report EXIT

install_packages() {
  local missing=()
  for tool in podman runc debootstrap; do
    command -v "$tool" > /dev/null || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ "${SKIP_APT:-0}" == 1 ]]; then
    echo "e2e: missing ${missing[*]} and SKIP_APT=1" >&2
    return 1
  fi
  apt-get install -y --no-install-recommends podman runc debootstrap > /dev/null \
    || { apt-get update > /dev/null && apt-get install -y --no-install-recommends podman runc debootstrap > /dev/null; }
}

build_images() {
  PYTHON_IMAGE="$base" hack/build-images.sh build "$registry" "$version" tools tao-standin
  # tao-step exactly as shipped, only its base swapped for the stand-in and its isolated Python
  # made from the stand-in's Debian python3 (no internet for python-build-standalone here). The
  # stand-in plays TAO 3's `classification` (the Dockerfile's default is TAO 6's command).
  PYTHON_IMAGE="$base" TAO_IMAGE="$registry/tao-standin:$version" STEP_PYTHON=/usr/bin/python3 \
    TAO_COMMAND=classification hack/build-images.sh build "$registry" "$version" tao-step
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($registry|$base)" || true
}

# NVIDIA's TAO PyTorch wheels (images/tao-pyt) from make tao-env's pins and wheelhouse: no
# download when the wheelhouse is warm. A rebuild replaces the previous image of each tag, so
# that one is removed (about 6 GB for tao-pyt).
build_tao_pyt_images() {
  local name ref old new
  hack/tao-env.sh pyt --wheels > /dev/null
  for name in tao-pyt tao-pyt-deploy; do
    ref="$registry/$name:$version"
    old="$(podman image inspect --format '{{.Id}}' "$ref" 2> /dev/null || true)"
    WHEELHOUSE="$(hack/tao-env.sh deploy --wheels)" PYTHON_IMAGE="$base" \
      PYTHON312_PREFIX="$(hack/tao-env.sh pyt --python)" \
      hack/build-images.sh build "$registry" "$version" "$name"
    new="$(podman image inspect --format '{{.Id}}' "$ref")"
    if [[ -n "$old" && "$old" != "$new" ]]; then podman image rm "$old" > /dev/null || true; fi
  done
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^$registry/tao-pyt" || true
}

phase "packages (apt)" install_packages
phase "podman check" podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}'
phase "base image (debootstrap)" hack/build-base-image.sh "$base"
phase "images" build_images
phase "images (TAO PyTorch)" build_tao_pyt_images
export E2E_REGISTRY="$registry" E2E_VERSION="$version"
phase "chart pods" .venv/bin/pytest -m e2e tests/e2e/test_podrun.py tests/e2e/test_chart_pods.py -p no:cacheprovider "$@"
phase "pipeline (DockerRunner)" .venv/bin/pytest -m e2e tests/e2e/test_pipeline_in_containers.py -p no:cacheprovider "$@"
phase "TAO PyTorch in its images" .venv/bin/pytest -m e2e tests/e2e/test_tao_pyt_images.py -p no:cacheprovider "$@"
