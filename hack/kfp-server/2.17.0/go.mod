// Builds Kubeflow Pipelines' API server and ScheduledWorkflow controller for `make e2e-kfp`
// (docs/kfp-server-harness.md). KFP's root go.mod replaces its nested api and
// kubernetes_platform modules with ./api and ./kubernetes_platform; replace directives of a
// dependency are ignored, so this module replaces both with the same commit as the root.
// KFP 2.17.0 = commit 4a3592cb2dd0a91a4652ab93893ec8beda1f3158.
module github.com/tao-kfp/hack/kfp-server/2.17.0

go 1.26

tool (
	github.com/kubeflow/pipelines/backend/src/apiserver
	github.com/kubeflow/pipelines/backend/src/crd/controller/scheduledworkflow
)

require github.com/kubeflow/pipelines v0.0.0-20260709152847-4a3592cb2dd0

replace (
	github.com/kubeflow/pipelines/api => github.com/kubeflow/pipelines/api v0.0.0-20260709152847-4a3592cb2dd0
	github.com/kubeflow/pipelines/kubernetes_platform => github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20260709152847-4a3592cb2dd0
)

// Copied from KFP's root go.mod at 2.17.0.
exclude github.com/mitchellh/osext v0.0.0-20151018003038-5e2d6d41470f
