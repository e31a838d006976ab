// KFP's own manifests (the multi-user kubeflow-pipelines-edit/-view ClusterRoles) for
// `make e2e-cluster`, read from the module at tag 2.0.5 (commit c5658f09ec38); nothing is
// built. KFP's git tags have no "v", so the proxy knows a commit by a pseudo-version; it
// answers 403 for the 2.17.0 commit (4a3592cb2dd0) here (docs/cluster-harness.md).
module github.com/tao-kfp/hack/cluster/kfp

go 1.24.0

require github.com/kubeflow/pipelines v0.0.0-20231208180049-c5658f09ec38
