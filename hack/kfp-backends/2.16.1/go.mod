// KFP backend 2.16.1: kubeflow/pipelines at tag 2.16.1 (commit 67a73cf809f7). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.16.1

go 1.24.10

require github.com/kubeflow/pipelines v0.0.0-20260504234626-67a73cf809f7

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20260504234626-67a73cf809f7
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20260504234626-67a73cf809f7
)
