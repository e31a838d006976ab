// KFP backend 2.14.4: kubeflow/pipelines at tag 2.14.4 (commit 417091dceddb). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.14.4

go 1.24.2

require github.com/kubeflow/pipelines v0.0.0-20251111154757-417091dceddb

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20251111154757-417091dceddb
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20251111154757-417091dceddb
)
