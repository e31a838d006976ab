#!/usr/bin/env bash
# Start Kubeflow Pipelines' own backend at one release (built by build.sh) on 127.0.0.1 only,
# the way that release's manifests (manifests/kustomize/base/pipeline) configure it: the API
# server with its config.json, the ScheduledWorkflow controller and, where the release has the
# controller create Workflows itself (2.0.5), the persistence agent that reports them to the
# API server. Around them: MariaDB (Debian's mariadb-server), SeaweedFS's S3 gateway, and a
# Kubernetes control plane (hack/cluster/up.sh with its nodes, or the one CLUSTER_ENV names) with KFP's
# ScheduledWorkflow CRD, Argo's Workflow CRD and KFP's ServiceAccounts and Roles applied from
# the release's own manifests. Each KFP process runs as its pod would: in a mount namespace of
# its own whose /run holds its ServiceAccount token, so in-cluster config and KFP's RBAC apply.
# No Argo controller runs: a run is created when its Workflow object exists.
#
# Usage: hack/kfp-server/up.sh STATE_DIR     (hack/kfp-server/down.sh STATE_DIR stops it)
# Writes STATE_DIR/kfp.env (KFP_HOST, KUBECONFIG, ...); logs in STATE_DIR/log.
# Environment: KFP_TAG (default 2.0.5; see build.sh), KFP_MULTI_USER=true|false (default
# false), CLUSTER_ENV: env file of a running control plane (hack/cluster/up.sh's STATE_DIR/env)
# to use instead of starting one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="$(mkdir -p "$1" && cd "$1" && pwd)"
mkdir -p "$state/log" "$state/run"
phase_start=$SECONDS
phase() { echo "kfp-server up: $1 ($((SECONDS - phase_start)) s)" >&2; phase_start=$SECONDS; }

eval "$("$here/build.sh")"
phase "KFP $KFP_TAG binaries ready"

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

# -- SeaweedFS: master, volume, filer and S3 gateway in one process, keys as KFP's config.json --
s3_port=$(free_port)
s3_access=minio s3_secret=minio123 # KFP's config.json defaults (ObjectStoreConfig)
cat > "$state/s3.json" << S3
{"identities": [{"name": "kfp", "credentials": [{"accessKey": "$s3_access", "secretKey": "$s3_secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
S3
mkdir -p "$state/seaweedfs"
# -volume.max: with 5 slots the default collection's volumes could take them all when the first
# upload came a minute after start ("No writable volumes" for the mlpipeline bucket); volumes are
# not preallocated, so 30 slots of 64 MB cost disk only when written.
start seaweedfs "$WEED_BIN/weed" server -dir="$state/seaweedfs" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="$(free_port)" -master.port.grpc="$(free_port)" \
  -volume.port="$(free_port)" -volume.port.grpc="$(free_port)" \
  -filer -filer.port="$(free_port)" -filer.port.grpc="$(free_port)" \
  -s3 -s3.port="$s3_port" -s3.port.grpc="$(free_port)" -s3.config="$state/s3.json" \
  -s3.port.iceberg=0 -s3.port.lance=0 -volume.max=30 -master.volumeSizeLimitMB=64
wait_for "SeaweedFS S3" 120 curl -s -o /dev/null "http://127.0.0.1:$s3_port/"
phase "SeaweedFS S3 on 127.0.0.1:$s3_port"

# -- Kubernetes control plane with KFP's and Argo's CRDs, KFP's ServiceAccounts and Roles ------
if [[ -z "${CLUSTER_ENV:-}" ]]; then
  "$repo/hack/cluster/up.sh" "$state/cluster"
  CLUSTER_ENV="$state/cluster/env"
  echo "$state/cluster" > "$state/run/cluster.owned"
  # Node cpu-1, whose agent runs the chart's pods (the helm tests' hook Jobs) in podman.
  "$repo/hack/cluster/nodes.sh" "$state/cluster" > /dev/null
fi
# shellcheck disable=SC1090
source "$CLUSTER_ENV"
export KUBECONFIG="$CLUSTER_ADMIN_KUBECONFIG"
kubectl() { "$CLUSTER_BIN/kubectl" "$@"; }
manifests="$KFP_SRC/manifests/kustomize"
argo_crd="$manifests/third-party/argo/upstream/manifests/base/crds/minimal/argoproj.io_workflows.yaml"
if [[ ! -f "$argo_crd" ]]; then
  # From 2.15 KFP's manifests take Argo's CRDs from Argo's own release
  # (third-party/argo/installs/cluster/kustomization.yaml): the Argo module KFP's go.mod requires.
  argo_version="$(grep -m1 'argoproj/argo-workflows/v[0-9]* ' "$KFP_SRC/go.mod" | awk '{print $1 "@" $2}')"
  argo_dir="$(cd "$here/$KFP_TAG" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$argo_version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  argo_crd="$argo_dir/manifests/base/crds/minimal/argoproj.io_workflows.yaml"
fi
kubectl apply --server-side -f "$argo_crd" \
  -f "$manifests/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml" > /dev/null
kubectl wait --for condition=established --timeout=60s crd/workflows.argoproj.io \
  crd/scheduledworkflows.kubeflow.org > /dev/null
kubectl create namespace kubeflow --dry-run=client -o yaml | kubectl apply -f - > /dev/null
# The ServiceAccount, Role and RoleBinding of each process, as kustomize renders them into
# namespace kubeflow (binding subjects get the namespace too); multi-user adds the processes'
# ClusterRoles and the kubeflow-pipelines-edit/-view ClusterRoles
# (manifests/kustomize/base/installs/multi-user).
"$repo/.venv/bin/python" - "$manifests/base" "${KFP_MULTI_USER:-false}" > "$state/rbac.yaml" << 'PY'
import sys, yaml
base, multi_user = sys.argv[1], sys.argv[2] == "true"
files = [f"{base}/pipeline/ml-pipeline-{part}-{kind}.yaml"
         for part in ("apiserver", "scheduledworkflow", "persistenceagent")
         for kind in ("sa", "role", "rolebinding")]
if multi_user:
    files += [f"{base}/installs/multi-user/{part}/cluster-role{kind}.yaml"
              for part in ("api-service", "scheduled-workflow", "persistence-agent")
              for kind in ("", "-binding")]
    files.append(f"{base}/installs/multi-user/view-edit-cluster-roles.yaml")
docs = []
for file in files:
    for doc in yaml.safe_load_all(open(file)):
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["namespace"] = "kubeflow"
        for subject in doc.get("subjects") or []:
            subject.setdefault("namespace", "kubeflow")
        docs.append(doc)
yaml.safe_dump_all(docs, sys.stdout)
PY
kubectl apply -f "$state/rbac.yaml" > /dev/null
phase "control plane with KFP's CRDs and RBAC"

# -- KFP's processes, each as its pod ----------------------------------------------------------
as_pod() { # as_pod NAME SERVICE_ACCOUNT COMMAND...: start COMMAND with that account's token
  local name="$1" account="$2" root="$state/pods/$1"
  shift 2
  mkdir -p "$root/run/secrets/kubernetes.io/serviceaccount" "$root/run/secrets/kubeflow/tokens" "$root/home"
  kubectl create token "$account" -n kubeflow --duration=24h > "$root/run/secrets/kubernetes.io/serviceaccount/token"
  cp "$CLUSTER_CA" "$root/run/secrets/kubernetes.io/serviceaccount/ca.crt"
  echo kubeflow > "$root/run/secrets/kubernetes.io/serviceaccount/namespace"
  # The persistence agent's projected token: audience pipelines.kubeflow.org, as its Deployment
  # mounts it at /var/run/secrets/kubeflow/tokens (ml-pipeline-persistenceagent-deployment.yaml);
  # a multi-user server's TokenReview refuses any other audience, and every report with it.
  [[ "$account" != ml-pipeline-persistenceagent ]] ||
    kubectl create token "$account" -n kubeflow --duration=24h --audience=pipelines.kubeflow.org \
      > "$root/run/secrets/kubeflow/tokens/persistenceagent-sa-token"
  # /var/run is /run; HOME is empty so no ~/.kube/config is read (2.0.5 client/swf.go:82-86).
  # shellcheck disable=SC2016 # $0 and $@ belong to the inner sh
  start "$name" unshare --mount --propagation private sh -c 'mount --bind "$0" /run && exec "$@"' \
    "$root/run" env HOME="$root/home" KUBERNETES_SERVICE_HOST=127.0.0.1 \
    KUBERNETES_SERVICE_PORT="$CLUSTER_API_PORT" POD_NAMESPACE=kubeflow NAMESPACE=kubeflow "$@"
}

http_port=$(free_port) grpc_port=$(free_port)
mkdir -p "$state/config"
cp "$KFP_SRC/backend/src/apiserver/config/config.json" "$state/config/config.json"
# The image preloads KFP's samples, compiled at image build by that release's SDK
# (backend/Dockerfile, --sampleconfig=/config/sample_config.json); 2.0.5 exits without the file
# (main.go:68-71). An empty list: the suite sees only its own pipelines.
echo '[]' > "$state/config/sample_config.json"
# What the release image sets: TAG_NAME and COMMIT_SHA are build arguments (backend/Dockerfile);
# 2.0.5's release build passes TAG_NAME from the VERSION file (.cloudbuild.yaml:54-57), the
# release workflow does from 2.16.0 on. A binary built without them answers "unknown".
tag_name="$(cat "$KFP_SRC/VERSION" 2> /dev/null || echo "$KFP_TAG")"
# The environment of the release's ml-pipeline Deployment (values from
# manifests/kustomize/base/installs/generic/pipeline-install-config.yaml) plus the Service
# variables Kubernetes gives the pod: minio-service (read by 2.0.5, client_manager.go:40-43) and
# the visualization server (the server exits without them; nothing listens there).
start_apiserver() {
  as_pod apiserver ml-pipeline env \
    TAG_NAME="$tag_name" COMMIT_SHA="$KFP_COMMIT" MULTIUSER="${KFP_MULTI_USER:-false}" \
    KUBEFLOW_USERID_HEADER=kubeflow-userid KUBEFLOW_USERID_PREFIX="" \
    OBJECTSTORECONFIG_SECURE=false OBJECTSTORECONFIG_BUCKETNAME=mlpipeline \
    OBJECTSTORECONFIG_HOST=127.0.0.1 OBJECTSTORECONFIG_PORT="$s3_port" \
    MINIO_SERVICE_SERVICE_HOST=127.0.0.1 MINIO_SERVICE_SERVICE_PORT="$s3_port" \
    OBJECTSTORECONFIG_ACCESSKEY="$s3_access" OBJECTSTORECONFIG_SECRETACCESSKEY="$s3_secret" \
    DBCONFIG_MYSQLCONFIG_USER=kfp DBCONFIG_MYSQLCONFIG_PASSWORD="$db_password" \
    DBCONFIG_MYSQLCONFIG_HOST=127.0.0.1 DBCONFIG_MYSQLCONFIG_PORT="$db_port" \
    DBCONFIG_MYSQLCONFIG_DBNAME=mlpipeline DBCONFIG_CONMAXLIFETIME=120s DB_DRIVER_NAME=mysql \
    AUTO_UPDATE_PIPELINE_DEFAULT_VERSION=true CRON_SCHEDULE_TIMEZONE=UTC \
    V2_DRIVER_IMAGE="ghcr.io/kubeflow/kfp-driver:$tag_name" \
    V2_LAUNCHER_IMAGE="ghcr.io/kubeflow/kfp-launcher:$tag_name" \
    ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST=127.0.0.1 \
    ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT="$(free_port)" \
    "$KFP_BIN/apiserver" --config="$state/config" --sampleconfig="$state/config/sample_config.json" \
    --logtostderr=true \
    --httpPortFlag="127.0.0.1:$http_port" --rpcPortFlag=":$grpc_port"
}
# The HTTP gateway dials "localhost" + --rpcPortFlag (main.go), so the gRPC port is given as
# ":PORT" (bound on every interface; only 127.0.0.1 talks to it).
start_apiserver
wait_for "KFP API server" 180 curl -sf "http://127.0.0.1:$http_port/apis/v1beta1/healthz"
phase "KFP $KFP_TAG API server on 127.0.0.1:$http_port"

# 2.0.5's controller takes no API server address (it creates Workflows itself, controller.go:505);
# later ones create each run through the API server's gRPC port.
# Multi-user: both watch every namespace (their multi-user Deployment patches set NAMESPACE '').
watch=kubeflow
[[ "${KFP_MULTI_USER:-false}" != true ]] || watch=""
swf_args=(--namespace="$watch" --logtostderr=true)
if "$KFP_BIN/scheduledworkflow" --help 2>&1 | grep -q mlPipelineAPIServerName; then
  swf_args+=(--mlPipelineAPIServerName=127.0.0.1 --mlPipelineServiceGRPCPort="$grpc_port"
    --metricsPort="$(free_port)")
fi
# Reconcile every 5 s instead of 30 s where the flag exists (2.17), so a test's schedule starts
# its first Workflow promptly.
if "$KFP_BIN/scheduledworkflow" --help 2>&1 | grep -q recurringRunResyncIntervalSeconds; then
  swf_args+=(--recurringRunResyncIntervalSeconds=5)
fi
as_pod scheduledworkflow ml-pipeline-scheduledworkflow env CRON_SCHEDULE_TIMEZONE=UTC \
  "$KFP_BIN/scheduledworkflow" "${swf_args[@]}"
if [[ -x "$KFP_BIN/persistence" ]]; then
  as_pod persistenceagent ml-pipeline-persistenceagent "$KFP_BIN/persistence" --logtostderr=true \
    --namespace="$watch" --ttlSecondsAfterWorkflowFinish=86400 --numWorker=2 \
    --mlPipelineAPIServerName=127.0.0.1 --mlPipelineServiceHttpPort="$http_port" \
    --mlPipelineServiceGRPCPort="$grpc_port"
fi
sleep 2
for name in scheduledworkflow persistenceagent; do
  [[ ! -f "$state/run/$name.pid" ]] || kill -0 "$(cat "$state/run/$name.pid")" || {
    tail -20 "$state/log/$name.log" >&2
    echo "kfp-server up: $name exited; see $state/log/$name.log" >&2
    exit 1
  }
done
phase "ScheduledWorkflow controller$([[ -x "$KFP_BIN/persistence" ]] && echo " and persistence agent")"

cat > "$state/kfp.env" << ENV
KFP_HOST=http://127.0.0.1:$http_port
KFP_GRPC=127.0.0.1:$grpc_port
KFP_TAG=$KFP_TAG
KFP_VERSION=$KFP_VERSION
KFP_COMMIT=$KFP_COMMIT
KFP_TAG_NAME=$tag_name
KFP_MULTI_USER=${KFP_MULTI_USER:-false}
KFP_STATE=$state
KUBECONFIG=$KUBECONFIG
KFP_DB_SOCKET=$state/run/mysql.sock
CLUSTER_ENV=$CLUSTER_ENV
ENV
echo "kfp-server: KFP $KFP_TAG up at http://127.0.0.1:$http_port (state $state)" >&2
