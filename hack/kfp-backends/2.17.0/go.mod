// KFP backend 2.17.0: kubeflow/pipelines at tag 2.17.0 (commit 4a3592cb2dd0). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.17.0

go 1.26

require github.com/kubeflow/pipelines v0.0.0-20260709152847-4a3592cb2dd0

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20260709152847-4a3592cb2dd0
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20260709152847-4a3592cb2dd0
)
