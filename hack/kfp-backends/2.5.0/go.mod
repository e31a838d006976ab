// KFP backend 2.5.0: kubeflow/pipelines at tag 2.5.0 (commit d07cf1c7f9bd). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.5.0

go 1.23.1

require github.com/kubeflow/pipelines v0.0.0-20250428191346-d07cf1c7f9bd

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20250428191346-d07cf1c7f9bd
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20250428191346-d07cf1c7f9bd
)
