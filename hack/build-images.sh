#!/usr/bin/env bash
# Build or push the project's container images (images/<name>/Dockerfile) with docker or podman.
#
# Usage: hack/build-images.sh build|push REGISTRY VERSION [NAME...]
#   NAME     a folder under images/ (tools, tao-step, tao-standin), or tao-deploy-step:
#            images/tao-step on TAO's deploy image, for the engine steps (chart:
#            images.taoDeploy); default: tao-step tao-deploy-step tools, what the chart's
#            default route (tao.version 6) pulls. tao-standin (the local stand-in for TAO's
#            image) and tao-pyt, tao-pyt-deploy (the two targets of images/tao-pyt: NVIDIA's
#            TAO PyTorch wheels) are local runs only, built when named.
#   tags     REGISTRY/NAME:VERSION
#   VERSION  must equal Chart.yaml appVersion, the project's one version source (the images
#            install the package hatch builds from Chart.yaml); `make images` passes it.
# Environment:
#   CONTAINER_ENGINE  docker or podman (default: the first one whose daemon/service answers)
#   TAO_IMAGE         base of tao-step (default in images/tao-step/Dockerfile: TAO 6.26.3-pyt)
#   TAO_COMMAND       TAO command checked at build time (default classification_pyt; give it with
#                     TAO_IMAGE: classification for TAO 3.x, classification_tf1 for 5.x)
#   TAO_DEPLOY_IMAGE  base of tao-deploy-step (default: nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy;
#                     TAO 5: nvcr.io/nvidia/tao/tao-toolkit:5.0.0-deploy)
#   TAO_DEPLOY_COMMAND  its command, whose gen_trt_engine builds the engine (default:
#                     classification_pyt; TAO 5: classification_tf1)
#   PYTHON_IMAGE      base of tools and tao-standin (default: python:3.11.13-slim-bookworm; a
#                     plain Debian with python3 works: hack/build-base-image.sh)
#   PYTHON312_PREFIX  a CPython 3.12 installation copied into tao-pyt* when PYTHON_IMAGE has
#                     none (hack/tao-env.sh pyt --python prints the one make tao-env uses)
#   STEP_PYTHON       interpreter in the TAO base for tao-step's isolated venv (default: empty =
#                     python-build-standalone via `uv python install`, which needs the internet
#                     or UV_PYTHON_INSTALL_MIRROR, a local copy of its release downloads)
#   CA_BUNDLE         CA bundle file for pip/uv behind a TLS-intercepting proxy (a build secret,
#                     never stored in a layer)
#   WHEELHOUSE        folder of local wheels pip/uv may use (air-gapped sites; torch CPU wheel)
#   PIP_INDEX_URL     package index to use instead of PyPI (no credentials in it: build args
#                     show in the image history)
#   BUILD_NETWORK     e.g. host: network of the build's RUN steps
#   DRY_RUN=1         print the commands without running them (no engine needed)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/podman-env.sh
. hack/podman-env.sh

usage() {
  sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 3 ]] || usage
action="$1"
registry="${2%/}"
version="$3"
shift 3
case "$action" in
  build | push) ;;
  *) echo "build-images: unknown action '$action' (use build or push)" >&2; usage ;;
esac

chart_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' Chart.yaml)"
if [[ "$version" != "$chart_version" ]]; then
  echo "build-images: VERSION=$version but Chart.yaml appVersion is $chart_version." >&2
  echo "  The images install the package built from Chart.yaml: use its version (change it with hack/set-version.sh)." >&2
  exit 1
fi

known=()
for dockerfile in images/*/Dockerfile; do
  known+=("$(basename "$(dirname "$dockerfile")")")
done
if [[ $# -gt 0 ]]; then
  names=("$@")
else
  names=(tao-step tao-deploy-step tools) # what the chart and the default route's pipeline pull
fi
# An image name built from another folder's Dockerfile.
dockerfile_of() {
  case "$1" in
    tao-deploy-step) echo images/tao-step/Dockerfile ;;
    tao-pyt-deploy) echo images/tao-pyt/Dockerfile ;;
    *) echo "images/$1/Dockerfile" ;;
  esac
}
for name in "${names[@]}"; do
  if [[ ! -f "$(dockerfile_of "$name")" ]]; then
    echo "build-images: no images/$name/Dockerfile (known: ${known[*]} tao-deploy-step tao-pyt-deploy)" >&2
    exit 1
  fi
done

dry_run="${DRY_RUN:-0}"

pick_engine() {
  if [[ -n "${CONTAINER_ENGINE:-}" ]]; then
    echo "$CONTAINER_ENGINE"
    return 0
  fi
  local candidate
  for candidate in docker podman; do
    if command -v "$candidate" > /dev/null 2>&1 && "$candidate" info > /dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! engine="$(pick_engine)"; then
  if [[ "$dry_run" == 1 ]]; then
    engine=docker
  else
    echo "build-images: no working container engine." >&2
    for candidate in docker podman; do
      if command -v "$candidate" > /dev/null 2>&1; then
        echo "  $candidate is installed but '$candidate info' fails (is its daemon/service running?)" >&2
      fi
    done
    echo "  Install docker (and start dockerd) or podman, or set CONTAINER_ENGINE." >&2
    exit 1
  fi
fi

run() {
  echo "+ $*"
  if [[ "$dry_run" != 1 ]]; then
    "$@"
  fi
}

git_commit="$(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
echo "build-images: $action ${names[*]} as $registry/<name>:$version with $engine"

for name in "${names[@]}"; do
  ref="$registry/$name:$version"
  if [[ "$action" == push ]]; then
    run "$engine" push "$ref"
    continue
  fi
  args=(build --file "$(dockerfile_of "$name")" --tag "$ref"
    --build-arg "VERSION=$version" --build-arg "GIT_COMMIT=$git_commit")
  case "$name" in
    tools) if [[ -n "${PYTHON_IMAGE:-}" ]]; then args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"); fi ;;
    tao-standin) if [[ -n "${PYTHON_IMAGE:-}" ]]; then args+=(--build-arg "BASE_IMAGE=$PYTHON_IMAGE"); fi ;;
    tao-pyt | tao-pyt-deploy)
      args+=(--target "$([[ $name == tao-pyt ]] && echo pyt || echo deploy)")
      if [[ -n "${PYTHON_IMAGE:-}" ]]; then args+=(--build-arg "BASE_IMAGE=$PYTHON_IMAGE"); fi
      if [[ -n "${PYTHON312_PREFIX:-}" ]]; then args+=(--build-context "python312=$PYTHON312_PREFIX"); fi
      ;;
    tao-step | tao-deploy-step)
      if [[ -n "${PYTHON_IMAGE:-}" ]]; then args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE"); fi
      if [[ "$name" == tao-deploy-step ]]; then
        args+=(--build-arg "TAO_IMAGE=${TAO_DEPLOY_IMAGE:-nvcr.io/nvidia/tao/tao-toolkit:6.26.3-deploy}"
          --build-arg "TAO_COMMAND=${TAO_DEPLOY_COMMAND:-classification_pyt}")
      else
        if [[ -n "${TAO_IMAGE:-}" ]]; then args+=(--build-arg "TAO_IMAGE=$TAO_IMAGE"); fi
        if [[ -n "${TAO_COMMAND:-}" ]]; then args+=(--build-arg "TAO_COMMAND=$TAO_COMMAND"); fi
      fi
      if [[ -n "${STEP_PYTHON:-}" ]]; then args+=(--build-arg "STEP_PYTHON=$STEP_PYTHON"); fi
      if [[ -n "${UV_PYTHON_INSTALL_MIRROR:-}" ]]; then
        args+=(--build-arg "UV_PYTHON_INSTALL_MIRROR=$UV_PYTHON_INSTALL_MIRROR")
      fi
      ;;
  esac
  if [[ -n "${CA_BUNDLE:-}" ]]; then args+=(--secret "id=ca,src=$CA_BUNDLE"); fi
  if [[ -n "${WHEELHOUSE:-}" ]]; then args+=(--build-context "wheelhouse=$WHEELHOUSE"); fi
  if [[ -n "${PIP_INDEX_URL:-}" ]]; then args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL"); fi
  if [[ -n "${BUILD_NETWORK:-}" ]]; then args+=(--network "$BUILD_NETWORK"); fi
  DOCKER_BUILDKIT=1 run "$engine" "${args[@]}" .
done
echo "build-images: done"
