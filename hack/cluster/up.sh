#!/usr/bin/env bash
# Start a Kubernetes control plane built from real sources (hack/cluster/build.sh) on
# 127.0.0.1 only: etcd, kube-apiserver (RBAC + Node authorizer, PodSecurity, NodeRestriction,
# ServiceAccount token projection), kube-controller-manager (garbage collector, Job, PV binder,
# root CA publisher, ...), kube-scheduler, kwok (fake GPU/CPU nodes) and local-path-provisioner
# (the default StorageClass, WaitForFirstConsumer). What the nodes look like and who runs the
# pods is the suite's business (tests/cluster_e2e). docs/cluster-harness.md explains each flag.
#
# Usage: hack/cluster/up.sh STATE_DIR     (hack/cluster/down.sh STATE_DIR stops it)
# Writes STATE_DIR/env (ports, kubeconfig paths) and STATE_DIR/*.kubeconfig; logs in STATE_DIR/log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$(mkdir -p "$1" && cd "$1" && pwd)"
bin="${CLUSTER_BIN:-$("$here/build.sh")}"  # CLUSTER_BIN: binaries built elsewhere
pki="$state/pki"
mkdir -p "$pki" "$state/log" "$state/run"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port) etcd_peer=$(free_port) api_port=$(free_port)
kcm_port=$(free_port) sched_port=$(free_port) kwok_port=$(free_port)
server="https://127.0.0.1:$api_port"

# -- certificates: one CA; the apiserver's serving cert; a client cert per identity ------------
ossl() { openssl "$@" 2> /dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tao-kfp-e2e-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
cert() { # cert NAME SUBJECT [SAN]: a certificate signed by the CA
  local name="$1" subject="$2" san="${3:-}" ext="$pki/$1.ext"
  ossl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$pki/$name.key" -out "$pki/$name.csr"
  {
    echo "basicConstraints=CA:FALSE"
    if [[ -n "$san" ]]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } > "$ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$pki/$name.crt"
}
cert apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# Services the suite runs on the host (the KFP double) serve with a cert of the cluster CA, so
# a pod trusting kube-root-ca.crt (scenario 05's caBundle) trusts them.
cert host-service "/CN=127.0.0.1" "IP:127.0.0.1,DNS:localhost"
cert admin "/O=system:masters/CN=e2e-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
# The node agent's identity, as a kubelet's: the Node authorizer and NodeRestriction apply.
cert node-cpu-1 "/O=system:nodes/CN=system:node:cpu-1"
# The suite's installer: a user with no group; the suite binds it to the namespace admin role.
cert tenant "/CN=tenant"
openssl genrsa -out "$pki/sa.key" 2048 2> /dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2> /dev/null

kubeconfig() { # kubeconfig NAME CERT: a kubeconfig for the client cert CERT
  cat > "$state/$1.kubeconfig" << EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
  - name: $1
    user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
  - name: $1
    context: {cluster: e2e, user: $1}
current-context: $1
EOF
}
kubeconfig admin admin
kubeconfig controller-manager controller-manager
kubeconfig scheduler scheduler
kubeconfig node-cpu-1 node-cpu-1
kubeconfig tenant tenant

log_prefix=cluster
# shellcheck source=hack/lib/background.sh
. "$here/../lib/background.sh"

start etcd "$bin/etcd" --name e2e --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "" \
  --unsafe-no-fsync --quota-backend-bytes 2147483648
wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

issuer="https://kubernetes.default.svc.cluster.local"
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --endpoint-reconciler-type none \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --service-account-issuer "$issuer" --api-audiences "$issuer" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --allow-privileged=true \
  --profiling=false
wait_for kube-apiserver 120 curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz"

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$state/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" \
  --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --leader-elect=false --profiling=false
start kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig "$state/scheduler.kubeconfig" \
  --authentication-kubeconfig "$state/scheduler.kubeconfig" \
  --authorization-kubeconfig "$state/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false --profiling=false
# kwok fakes the kubelet of the nodes labelled type=kwok only; the suite's node agent owns the rest.
# Its behaviour is its own "fast" stage set (kustomize/stage/fast: nodes Ready with a Lease
# heartbeat, pods Running, Job pods Succeeded, deletions finished), read from the module.
kwok_stages="$("$here/module-dir.sh" kwok sigs.k8s.io/kwok)/kustomize/stage"
kwok_configs=()
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
  pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  kwok_configs+=(--config "$kwok_stages/$stage.yaml")
done
start kwok "$bin/kwok" --kubeconfig "$state/admin.kubeconfig" "${kwok_configs[@]}" \
  --manage-all-nodes=false --manage-nodes-with-label-selector type=kwok \
  --server-address "127.0.0.1:$kwok_port" --node-ip 127.0.0.1 --node-lease-duration-seconds 40

wait_for "kube-root-ca.crt in default" 60 \
  "$bin/kubectl" --kubeconfig "$state/admin.kubeconfig" get configmap kube-root-ca.crt -n default
"$here/local-path.sh" "$state" "$bin"

cat > "$state/env" << EOF
CLUSTER_DIR=$state
CLUSTER_BIN=$bin
CLUSTER_SERVER=$server
CLUSTER_API_PORT=$api_port
CLUSTER_CA=$pki/ca.crt
CLUSTER_ADMIN_KUBECONFIG=$state/admin.kubeconfig
CLUSTER_TENANT_KUBECONFIG=$state/tenant.kubeconfig
CLUSTER_NODE_KUBECONFIG=$state/node-cpu-1.kubeconfig
CLUSTER_HOST_SERVICE_CERT=$pki/host-service.crt
CLUSTER_HOST_SERVICE_KEY=$pki/host-service.key
EOF
echo "cluster: up at $server (state $state)" >&2
