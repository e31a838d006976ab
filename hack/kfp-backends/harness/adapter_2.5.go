// Adapter for KFP backend 2.5.x: signatures at kubeflow/pipelines 2.5.0. Overlaid into
// backend/src/v2/driver with harness_test.go and lenient.go.
package driver

import (
	"context"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/v2/metadata"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
)

func uploadParse(raw []byte) (template.Template, error) { return template.New(raw) }

func runOptions() template.RunWorkflowOptions {
	return template.RunWorkflowOptions{RunId: harnessRunID, RunAt: 1}
}

// podSpecPatch: driver.Container's calls (2.5.0 backend/src/v2/driver/driver.go:380,398).
func podSpecPatch(container *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, k8sCfg *kubernetesplatform.KubernetesExecutorConfig, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	// executionID, pipelineName, runID, pipelineLogLevel, publishLogs
	pod, err := initPodSpecPatch(container, component, in, 1, "harness", harnessRunID, "1", "false")
	if err != nil {
		return nil, err
	}
	opts := Options{Component: component, Task: task, Container: container, KubernetesExecutorConfig: k8sCfg}
	err = extendPodSpecPatch(context.Background(), pod, opts, &metadata.DAG{Execution: &metadata.Execution{}}, nil, nil, map[string]*structpb.Value{})
	return pod, err
}

// recordedTaskName: before 2.14 the driver records a task under taskInfo.name
// (2.5.0 driver.go:329, metadata/client.go:549-550) and resolves producers by task key
// (driver.go:1828-1830).
func recordedTaskName(key string, task *pipelinespec.PipelineTaskSpec) string {
	return task.GetTaskInfo().GetName()
}

// adminPodSpecPatch: this backend has no admin default run-as user or group (from 2.16).
func adminPodSpecPatch(*pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, *kubernetesplatform.KubernetesExecutorConfig, *pipelinespec.ComponentSpec, *pipelinespec.PipelineTaskSpec, *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	return nil, nil
}
