#!/usr/bin/env bash
# Install rancher/local-path-provisioner from its own module's deploy/local-path-storage.yaml
# (namespace, ServiceAccount, RBAC, StorageClass "local-path" with WaitForFirstConsumer,
# ConfigMap) and run the provisioner built from that module on this host as that
# ServiceAccount, instead of its Deployment (no registry to pull its image from).
# Called by hack/cluster/up.sh. Changes to upstream's objects, each for a reason:
# - the StorageClass is the cluster default (scenarios that name no class use it);
# - config.json uses sharedFileSystemPath (a folder of this host) instead of nodePathMap: the
#   chart's default claim is ReadWriteMany, which nodePathMap refuses (provisioner.go:341);
# - the helper pod runs LOCAL_PATH_HELPER_IMAGE (default: the e2e Debian base; busybox cannot be
#   pulled) and only on nodes labelled tao-kfp.e2e/agent=true, where the suite's node agent runs
#   pods for real (kwok nodes would only pretend).
#
# Usage: hack/cluster/local-path.sh STATE_DIR BIN_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$1" bin="$2"
kubectl=("$bin/kubectl" --kubeconfig "$state/admin.kubeconfig")
module_dir="$("$here/module-dir.sh" local-path github.com/rancher/local-path-provisioner)"
data="$state/local-path"
mkdir -p "$data"

"$here/../../.venv/bin/python" - "$module_dir/deploy/local-path-storage.yaml" "$data" \
  "${LOCAL_PATH_HELPER_IMAGE:-localhost/tao-kfp/debian-python:bookworm}" > "$state/local-path.yaml" << 'EOF'
import json, sys, yaml
source, data, image = sys.argv[1:]
out = []
for doc in yaml.safe_load_all(open(source)):
    if not doc or doc["kind"] == "Deployment":
        continue
    if doc["kind"] == "StorageClass":
        doc["metadata"].setdefault("annotations", {})["storageclass.kubernetes.io/is-default-class"] = "true"
    if doc["kind"] == "ConfigMap":
        doc["data"]["config.json"] = json.dumps({"sharedFileSystemPath": data})
        helper = yaml.safe_load(doc["data"]["helperPod.yaml"])
        helper["spec"]["containers"][0]["image"] = image
        helper["spec"]["nodeSelector"] = {"tao-kfp.e2e/agent": "true"}
        doc["data"]["helperPod.yaml"] = yaml.safe_dump(helper)
    out.append(doc)
print(yaml.safe_dump_all(out))
EOF
"${kubectl[@]}" apply -f "$state/local-path.yaml" > /dev/null
# The provisioner's own identity: a token of upstream's ServiceAccount, so upstream's RBAC applies.
token="$("${kubectl[@]}" create token local-path-provisioner-service-account -n local-path-storage --duration 48h)"
cat > "$state/local-path.kubeconfig" << EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: "$("${kubectl[@]}" config view -o jsonpath='{.clusters[0].cluster.server}')", certificate-authority: "$state/pki/ca.crt"}
users:
  - name: local-path-provisioner
    user: {token: "$token"}
contexts:
  - name: local-path-provisioner
    context: {cluster: e2e, user: local-path-provisioner}
current-context: local-path-provisioner
EOF
chmod 600 "$state/local-path.kubeconfig"
"$bin/local-path-provisioner" --debug start --kubeconfig "$state/local-path.kubeconfig" \
  --namespace local-path-storage --provisioner-name rancher.io/local-path \
  --configmap-name local-path-config --service-account-name local-path-provisioner-service-account \
  --helper-image "${LOCAL_PATH_HELPER_IMAGE:-localhost/tao-kfp/debian-python:bookworm}" \
  > "$state/log/local-path-provisioner.log" 2>&1 &
echo $! > "$state/run/local-path-provisioner.pid"
