// KFP backend 2.15.0: kubeflow/pipelines at tag 2.15.0 (commit 8fe8d7bdd88f). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.15.0

go 1.24.7

require github.com/kubeflow/pipelines v0.0.0-20251125164028-8fe8d7bdd88f

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20251125164028-8fe8d7bdd88f
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20251125164028-8fe8d7bdd88f
)
