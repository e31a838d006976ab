// KFP backend 2.2.0: kubeflow/pipelines at tag 2.2.0 (commit dd59f48cdd0f). The replace directives
// reproduce the tag's go.mod; from 2.5.0 its api and kubernetes_platform modules are replaced
// with the same commit as the root (the tag replaces them with ./api and ./kubernetes_platform).
module tao-kfp/hack/kfp-backends/2.2.0

go 1.20

require github.com/kubeflow/pipelines v0.0.0-20240430181920-dd59f48cdd0f

replace (
	github.com/kubeflow/kfp-tekton/tekton-catalog/cache => github.com/kubeflow/kfp-tekton/tekton-catalog/cache v0.0.0-20231127195001-a75d4b3711ff
	github.com/kubeflow/kfp-tekton/tekton-catalog/objectstore => github.com/kubeflow/kfp-tekton/tekton-catalog/objectstore v0.0.0-20231127195001-a75d4b3711ff
	k8s.io/api => k8s.io/api v0.25.9
	k8s.io/apimachinery => k8s.io/apimachinery v0.26.5
	k8s.io/client-go => k8s.io/client-go v0.25.9
	k8s.io/code-generator => k8s.io/code-generator v0.25.9
	k8s.io/kubernetes => k8s.io/kubernetes v1.11.1
	sigs.k8s.io/controller-tools => sigs.k8s.io/controller-tools v0.2.9
)
