#!/usr/bin/env bash
# Create a kind cluster with standalone Kubeflow Pipelines and this chart installed: the
# cluster the smoke tests (make test-cluster) run against. Idempotent: re-running keeps the
# cluster and KFP, rebuilds and reloads the images and upgrades the release.
#
# Usage: hack/kind-up.sh            (or: make kind-up)
# Environment (defaults in brackets):
#   KIND_CLUSTER_NAME   [tao-kfp]          kind cluster name
#   KIND_NODE_IMAGE     [kind's default]   kindest/node image, e.g. kindest/node:v1.32.2
#   KFP_VERSION         [2.17.3]           Kubeflow Pipelines release (matches the kfp SDK pin)
#   RELEASE / NAMESPACE [tao-kfp/kubeflow]  Helm release and its namespace (where KFP runs pipeline pods)
#   REGISTRY            [localhost:5000/tao-kfp]  image repository prefix (the chart default)
#   KIND_WITH_TAO_STEP  [false]            also build and load tao-step (pulls the ~15 GB TAO
#                                          image from nvcr.io: needs `docker login nvcr.io`);
#                                          kind has no GPU, so no step runs on it anyway
#   VALUES              [hack/kind-values.yaml]  values file(s) for the release, space-separated
#   HELM3               [helm on PATH]     helm binary (make exports the pinned one)
#   CONTAINER_ENGINE    [docker, else podman]
set -euo pipefail
cd "$(dirname "$0")/.."

cluster="${KIND_CLUSTER_NAME:-tao-kfp}"
kfp_version="${KFP_VERSION:-2.17.3}"
release="${RELEASE:-tao-kfp}"
namespace="${NAMESPACE:-kubeflow}"
registry="${REGISTRY:-localhost:5000/tao-kfp}"
with_tao_step="${KIND_WITH_TAO_STEP:-false}"
values="${VALUES:-hack/kind-values.yaml}"
helm="${HELM3:-$(command -v helm || true)}"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' Chart.yaml)"

say() { echo "kind-up: $*"; }
die() {
  echo "kind-up: $*" >&2
  exit 1
}

# ---- prerequisites ----
missing=()
for tool in kind kubectl; do
  command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done
[[ -n "$helm" && -x "$helm" ]] || missing+=("helm (run 'make tools' or set HELM3)")
engine="${CONTAINER_ENGINE:-}"
if [[ -z "$engine" ]]; then
  for candidate in docker podman; do
    if command -v "$candidate" > /dev/null 2>&1 && "$candidate" info > /dev/null 2>&1; then
      engine="$candidate"
      break
    fi
  done
fi
[[ -n "$engine" ]] || missing+=("a running docker or podman")
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing prerequisites: ${missing[*]}. Install them (https://kind.sigs.k8s.io, https://kubernetes.io/docs/tasks/tools/) and retry."
fi
if [[ "$engine" == podman ]]; then
  export KIND_EXPERIMENTAL_PROVIDER=podman
fi
say "cluster=$cluster KFP=$kfp_version release=$release namespace=$namespace images=$registry/*:$version engine=$engine"

# ---- cluster ----
if kind get clusters 2> /dev/null | grep -qx "$cluster"; then
  say "kind cluster '$cluster' exists; keeping it"
else
  say "creating kind cluster '$cluster'"
  kind create cluster --name "$cluster" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi
context="kind-$cluster"
kubectl config use-context "$context" > /dev/null
say "kubectl context: $context"

# ---- Kubeflow Pipelines (standalone, platform-agnostic manifests) ----
manifests="github.com/kubeflow/pipelines/manifests/kustomize"
say "installing Kubeflow Pipelines $kfp_version (cluster-scoped resources)"
kubectl apply -k "$manifests/cluster-scoped-resources?ref=$kfp_version"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
say "installing Kubeflow Pipelines $kfp_version (env/platform-agnostic)"
kubectl apply -k "$manifests/env/platform-agnostic?ref=$kfp_version"
say "waiting for the KFP deployments in namespace kubeflow (first start pulls images: up to 20 min)"
if ! kubectl -n kubeflow wait --for=condition=Available deployment --all --timeout=20m; then
  kubectl -n kubeflow get pods -o wide >&2 || true
  die "KFP deployments did not become Available; see the pod list above (kubectl -n kubeflow describe pod ...)"
fi

# ---- a node that looks like a GPU node to the chart's scheduling defaults ----
node="$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')"
say "labelling node $node nvidia.com/gpu.present=true (as the GPU operator would; there is no GPU)"
kubectl label node "$node" nvidia.com/gpu.present=true --overwrite

# ---- images ----
images=(tools)
if [[ "$with_tao_step" == true ]]; then
  images+=(tao-step)
else
  say "skipping tao-step (KIND_WITH_TAO_STEP=true builds it; GPU steps cannot run on kind)"
fi
CONTAINER_ENGINE="$engine" hack/build-images.sh build "$registry" "$version" "${images[@]}"
for name in "${images[@]}"; do
  ref="$registry/$name:$version"
  say "loading $ref into kind"
  if [[ "$engine" == podman ]]; then
    archive="$(mktemp --suffix=.tar)"
    podman save --output "$archive" "$ref"
    kind load image-archive --name "$cluster" "$archive"
    rm -f "$archive"
  else
    kind load docker-image --name "$cluster" "$ref"
  fi
done

# ---- the chart ----
if [[ ! -f files/pipelines/tao-classification.yaml ]]; then
  die "files/pipelines/tao-classification.yaml is missing: run 'make compile' first"
fi
values_args=()
for file in $values; do
  [[ -f "$file" ]] || die "values file $file not found (VALUES=$values)"
  values_args+=(--values "$file")
done
# No --wait: kind's local-path StorageClass binds the claim only when a pod uses it, and that
# pod is the post-install init Job; Helm still waits for its hook Jobs (init, upload).
say "installing the chart: helm upgrade --install $release -n $namespace ${values_args[*]}"
"$helm" upgrade --install "$release" . --namespace "$namespace" --create-namespace \
  "${values_args[@]}" --timeout 15m
say "running helm test"
"$helm" test "$release" --namespace "$namespace" --timeout 10m

cat << DONE
kind-up: ready.
  KFP UI:      kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80   (http://localhost:8080)
  smoke tests: KUBECONFIG=\${KUBECONFIG:-\$HOME/.kube/config} make test-cluster
  remove:      hack/kind-down.sh
DONE
