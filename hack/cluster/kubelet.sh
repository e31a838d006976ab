#!/usr/bin/env bash
# The real-kubelet experiment of docs/cluster-harness.md ("Kubelet attempt"), not used by the
# suite: Debian's containerd and runc with a CNI bridge and the kubelet of
# k8s.io/kubernetes (built with CLUSTER_KUBELET=1 hack/cluster/build.sh), registered as node
# kubelet-1 (tainted tao-kfp.e2e/kubelet=true:NoSchedule, so only pods that ask land there)
# on a control plane from hack/cluster/up.sh STATE_DIR. Stopped by hack/cluster/down.sh.
# Settings this kind of machine needs (cgroup v1 hybrid, no systemd, no CAP_SYS_RESOURCE):
# kubelet failCgroupV1: false, cgroupDriver: cgroupfs, cgroupsPerQOS: false, no node
# allocatable enforcement, a node IP that is not loopback; containerd restrict_oom_score_adj
# (the sandbox's oom_score_adj -998 otherwise fails runc: "can't get final child's PID").
#
# Usage: hack/cluster/kubelet.sh STATE_DIR [IMAGE...]   (images are copied from podman)
# Needs: apt packages containerd, runc, containernetworking-plugins, gcc (for pause).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$(cd "$1" && pwd)"
shift
bin="$(CLUSTER_KUBELET=1 "$here/build.sh")"
dir="$state/kubelet"
sock="$dir/containerd/containerd.sock"
node_ip="$(hostname -I | tr ' ' '\n' | grep -v '^127\.' | grep -v ':' | head -1)"
mkdir -p "$dir/cni" "$dir/containerd" "$dir/root" "$dir/pod-logs"

cat > "$dir/containerd.toml" << TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
[grpc]
  address = "$sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/tao-kfp/pause:e2e"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni"
TOML
cat > "$dir/cni/10-bridge.conflist" << 'JSON'
{"cniVersion": "1.0.0", "name": "e2e", "plugins": [
  {"type": "bridge", "bridge": "cni-e2e0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
JSON
cat > "$dir/kubelet.yaml" << YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://$sock
address: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: Webhook}
registerWithTaints:
  - {key: tao-kfp.e2e/kubelet, value: "true", effect: NoSchedule}
podLogsDir: $dir/pod-logs
evictionHard: {}
# a shared disk is often above the default 85 %: never delete the images imported above
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
YAML

# The node's identity, as up.sh makes cpu-1's: the Node authorizer and NodeRestriction apply.
pki="$state/pki"
openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:kubelet-1" \
  -keyout "$pki/kubelet-1.key" -out "$pki/kubelet-1.csr" 2> /dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$pki/kubelet-1.ext"
openssl x509 -req -in "$pki/kubelet-1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
  -CAcreateserial -days 2 -extfile "$pki/kubelet-1.ext" -out "$pki/kubelet-1.crt" 2> /dev/null
sed "s/node-cpu-1/kubelet-1/g" "$state/node-cpu-1.kubeconfig" > "$state/kubelet-1.kubeconfig"

log_prefix=kubelet
# shellcheck source=hack/lib/background.sh
. "$here/../lib/background.sh"
# The sandbox image: Kubernetes' own pause (build/pause/linux/pause.c of the same module),
# built static, as a one-file image (nothing can be pulled here).
if ! podman image exists localhost/tao-kfp/pause:e2e; then
  pause_src="$("$here/module-dir.sh" k8s k8s.io/kubernetes)/build/pause/linux/pause.c"
  mkdir -p "$dir/pause"
  gcc -Os -static -DVERSION=e2e -o "$dir/pause/pause" "$pause_src"
  tar -C "$dir/pause" -cf "$dir/pause.tar" pause
  podman import --change 'ENTRYPOINT ["/pause"]' "$dir/pause.tar" localhost/tao-kfp/pause:e2e > /dev/null
fi
start containerd containerd --config "$dir/containerd.toml"
wait_for containerd 30 ctr --address "$sock" version
for image in localhost/tao-kfp/pause:e2e "$@"; do
  podman save "$image" | ctr --address "$sock" -n k8s.io images import - > /dev/null
done
start kubelet "$bin/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$state/kubelet-1.kubeconfig" \
  --hostname-override kubelet-1 --node-ip "$node_ip" --root-dir "$dir/root" --cert-dir "$dir/pki"
wait_for "node kubelet-1 Ready" 90 "$bin/kubectl" --kubeconfig "$state/admin.kubeconfig" \
  wait --for=condition=Ready node/kubelet-1 --timeout=1s
echo "kubelet: node kubelet-1 Ready ($node_ip)" >&2
