#!/usr/bin/env bash
# Start Kubeflow Pipelines' own API server and ScheduledWorkflow controller (built by build.sh)
# on 127.0.0.1 only, the way KFP 2.17.0's manifests configure them
# (manifests/kustomize/base/pipeline/ml-pipeline-apiserver-deployment.yaml): its config.json,
# MariaDB (Debian's mariadb-server) on a private port and socket, SeaweedFS's S3 gateway, and a
# Kubernetes control plane (hack/cluster/up.sh, or the one CLUSTER_ENV names) with KFP's
# ScheduledWorkflow CRD and Argo's Workflow CRD applied from the modules' own manifests.
# No Argo controller runs: a run is created when its Workflow object exists.
#
# Usage: hack/kfp-server/up.sh STATE_DIR     (hack/kfp-server/down.sh STATE_DIR stops it)
# Writes STATE_DIR/kfp.env (KFP_HOST, KUBECONFIG, ...); logs in STATE_DIR/log.
# Environment: KFP_MULTI_USER=true|false (default false); CLUSTER_ENV: env file of a running
# control plane (hack/cluster/up.sh's STATE_DIR/env) to use instead of starting one, or "none"
# for no control plane (uploads only; the run and schedule tests skip).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$(mkdir -p "$1" && cd "$1" && pwd)"
mkdir -p "$state/log" "$state/run"
phase_start=$SECONDS
phase() { echo "kfp-server up: $1 ($((SECONDS - phase_start)) s)" >&2; phase_start=$SECONDS; }

eval "$("$here/build.sh")"
phase "binaries ready"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
log_prefix=kfp-server
# shellcheck source=hack/lib/background.sh
. "$here/../lib/background.sh"

# -- MariaDB: a private instance, root over its socket, user kfp over TCP on 127.0.0.1 ----------
db_port=$(free_port)
db_password="kfp-e2e-$RANDOM$RANDOM"
mariadb-install-db --no-defaults --datadir="$state/mysql" --auth-root-authentication-method=socket \
  --skip-test-db > "$state/log/mariadb-install.log" 2>&1
start mariadb mariadbd --no-defaults --datadir="$state/mysql" --socket="$state/run/mysql.sock" \
  --pid-file="$state/run/mariadbd.pidfile" --port="$db_port" --bind-address=127.0.0.1 \
  --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --user=root
wait_for MariaDB 60 mariadb --no-defaults --socket="$state/run/mysql.sock" -e 'select 1'
mariadb --no-defaults --socket="$state/run/mysql.sock" -e \
  "CREATE USER 'kfp'@'127.0.0.1' IDENTIFIED BY '$db_password'; GRANT ALL ON *.* TO 'kfp'@'127.0.0.1';"
phase "MariaDB on 127.0.0.1:$db_port"

# -- SeaweedFS: master, volume, filer and S3 gateway in one process, keys as KFP's manifest ------
s3_port=$(free_port)
s3_access=minio s3_secret=minio123 # KFP's config.json defaults (ObjectStoreConfig)
cat > "$state/s3.json" << S3
{"identities": [{"name": "kfp", "credentials": [{"accessKey": "$s3_access", "secretKey": "$s3_secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
S3
if [[ -x "$WEED_BIN/weed" ]]; then
  mkdir -p "$state/seaweedfs"
  start seaweedfs "$WEED_BIN/weed" server -dir="$state/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$(free_port)" -master.port.grpc="$(free_port)" \
    -volume.port="$(free_port)" -volume.port.grpc="$(free_port)" \
    -filer -filer.port="$(free_port)" -filer.port.grpc="$(free_port)" \
    -s3 -s3.port="$s3_port" -s3.port.grpc="$(free_port)" -s3.config="$state/s3.json" \
    -volume.max=5 -master.volumeSizeLimitMB=64
  wait_for "SeaweedFS S3" 90 curl -s -o /dev/null "http://127.0.0.1:$s3_port/"
  phase "SeaweedFS S3 on 127.0.0.1:$s3_port"
else
  # 2.17 keeps pipeline specs in the database; at start it only checks the bucket, and logs a
  # warning when that fails (client_manager.go:944-949). Runs' logs and artifacts need S3.
  echo "kfp-server up: no SeaweedFS build (KFP_SKIP_S3_BUILD=true): no S3 store on :$s3_port" >&2
fi

# -- Kubernetes control plane with KFP's and Argo's CRDs ----------------------------------------
if [[ "${CLUSTER_ENV:-}" == none ]]; then
  # No control plane: uploads and versions work (the server only builds its Kubernetes clients
  # at start); runs and recurring runs fail, and the suite skips their tests.
  export KUBECONFIG="$state/no-cluster.kubeconfig" CLUSTER_BIN=""
  cat > "$KUBECONFIG" << KCFG
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
KCFG
else
  if [[ -z "${CLUSTER_ENV:-}" ]]; then
    "$repo/hack/cluster/up.sh" "$state/cluster"
    CLUSTER_ENV="$state/cluster/env"
    echo "$state/cluster" > "$state/run/cluster.owned"
  fi
  # shellcheck disable=SC1090
  source "$CLUSTER_ENV"
  export KUBECONFIG="$CLUSTER_ADMIN_KUBECONFIG"
  kubectl() { "$CLUSTER_BIN/kubectl" "$@"; }
  argo_dir="$(cd "$here" && GOWORK=off go list -m -f '{{.Dir}}' github.com/argoproj/argo-workflows/v4 2> /dev/null || true)"
  if [[ -z "$argo_dir" ]]; then
    argo_version="$(grep -m1 'argoproj/argo-workflows/v4 ' "$KFP_SRC/go.mod" | awk '{print $2}')"
    argo_dir="$(cd "$here" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-workflows/v4@$argo_version" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  fi
  # KFP installs Argo's minimal CRDs (KFP manifests/kustomize/third-party/argo/installs/cluster).
  kubectl apply --server-side -f "$argo_dir/manifests/base/crds/minimal/argoproj.io_workflows.yaml" \
    -f "$KFP_SRC/manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml" > /dev/null
  kubectl wait --for condition=established --timeout=60s crd/workflows.argoproj.io \
    crd/scheduledworkflows.kubeflow.org > /dev/null
  kubectl create namespace kubeflow --dry-run=client -o yaml | kubectl apply -f - > /dev/null
fi
phase "control plane with CRDs"

# -- KFP's API server and ScheduledWorkflow controller -----------------------------------------
http_port=$(free_port) grpc_port=$(free_port) metrics_port=$(free_port)
mkdir -p "$state/config"
cp "$KFP_SRC/backend/src/apiserver/config/config.json" "$state/config/config.json"
# The environment of the manifest's ml-pipeline Deployment; TAG_NAME/COMMIT_SHA as the release
# image sets them (KFP backend/Dockerfile: ARG TAG_NAME, passed the tag from 2.16.0 on).
env_common=(
  POD_NAMESPACE=kubeflow CLUSTER_DOMAIN=cluster.local KUBECONFIG="$KUBECONFIG"
  MULTIUSER="${KFP_MULTI_USER:-false}"
  OBJECTSTORECONFIG_SECURE=false OBJECTSTORECONFIG_BUCKETNAME=mlpipeline
  OBJECTSTORECONFIG_HOST=127.0.0.1 OBJECTSTORECONFIG_PORT="$s3_port"
  OBJECTSTORECONFIG_ACCESSKEY="$s3_access" OBJECTSTORECONFIG_SECRETACCESSKEY="$s3_secret"
  DBCONFIG_MYSQLCONFIG_USER=kfp DBCONFIG_MYSQLCONFIG_PASSWORD="$db_password"
  DBCONFIG_MYSQLCONFIG_HOST=127.0.0.1 DBCONFIG_MYSQLCONFIG_PORT="$db_port"
  DBCONFIG_MYSQLCONFIG_DBNAME=mlpipeline DBCONFIG_CONMAXLIFETIME=120s DB_DRIVER_NAME=mysql
  AUTO_UPDATE_PIPELINE_DEFAULT_VERSION=true CRON_SCHEDULE_TIMEZONE=UTC
  V2_DRIVER_IMAGE="ghcr.io/kubeflow/kfp-driver:${KFP_TAG:-2.17.0}"
  V2_LAUNCHER_IMAGE="ghcr.io/kubeflow/kfp-launcher:${KFP_TAG:-2.17.0}"
  # Kubernetes' service variables of the visualization server the manifests deploy; the server
  # exits without them (client_manager.go:75-76). Nothing listens there.
  ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST=127.0.0.1
  ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT="$(free_port)"
)
# The HTTP gateway dials "localhost" + --rpcPortFlag (main.go:607), so the gRPC port is given
# as ":PORT" (bound on every interface; only 127.0.0.1 talks to it).
start apiserver env "${env_common[@]}" TAG_NAME="${KFP_TAG:-2.17.0}" COMMIT_SHA="$KFP_COMMIT" \
  "$KFP_BIN/apiserver" --config="$state/config" --logtostderr=true --logLevel=info \
  --httpPortFlag="127.0.0.1:$http_port" --rpcPortFlag=":$grpc_port"
wait_for "KFP API server" 180 curl -sf "http://127.0.0.1:$http_port/apis/v2beta1/healthz"
phase "KFP API server on 127.0.0.1:$http_port"
# metricsPort is bound as ":PORT" by the controller (no host part can be given).
[[ "${CLUSTER_ENV:-}" == none ]] || start scheduledworkflow env NAMESPACE=kubeflow CRON_SCHEDULE_TIMEZONE=UTC \
  "$KFP_BIN/scheduledworkflow" --kubeconfig="$KUBECONFIG" --namespace=kubeflow --logLevel=info \
  --mlPipelineAPIServerName=127.0.0.1 --mlPipelineServiceGRPCPort="$grpc_port" \
  --metricsPort="$metrics_port" --recurringRunResyncIntervalSeconds=5
sleep 1
[[ "${CLUSTER_ENV:-}" == none ]] || kill -0 "$(cat "$state/run/scheduledworkflow.pid")"
phase "ScheduledWorkflow controller"

cat > "$state/kfp.env" << ENV
KFP_HOST=http://127.0.0.1:$http_port
KFP_GRPC=127.0.0.1:$grpc_port
KFP_VERSION=$KFP_VERSION
KFP_COMMIT=$KFP_COMMIT
KFP_TAG=${KFP_TAG:-2.17.0}
KFP_MULTI_USER=${KFP_MULTI_USER:-false}
KFP_STATE=$state
KUBECONFIG=$KUBECONFIG
KFP_CLUSTER=${CLUSTER_ENV:-own}
KFP_DB_SOCKET=$state/run/mysql.sock
ENV
echo "kfp-server: up at http://127.0.0.1:$http_port (state $state)" >&2
