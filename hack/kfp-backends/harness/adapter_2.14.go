// Adapter for KFP backend 2.14.x: signatures at kubeflow/pipelines 2.14.4. Overlaid into
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

func uploadParse(raw []byte) (template.Template, error) { return template.New(raw, false, nil) }

func runOptions() template.RunWorkflowOptions {
	return template.RunWorkflowOptions{RunId: harnessRunID, RunAt: 1}
}

// podSpecPatch: driver.Container's calls (2.14.4 backend/src/v2/driver/container.go:185,204).
func podSpecPatch(container *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, k8sCfg *kubernetesplatform.KubernetesExecutorConfig, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	// executionID, pipelineName, runID, pipelineLogLevel, publishLogs, cacheDisabled
	pod, err := initPodSpecPatch(container, component, in, 1, "harness", harnessRunID, "1", "false", "true")
	if err != nil {
		return nil, err
	}
	opts := Options{Component: component, Task: task, Container: container, KubernetesExecutorConfig: k8sCfg}
	err = extendPodSpecPatch(context.Background(), pod, opts, &metadata.DAG{Execution: &metadata.Execution{}}, nil, nil, map[string]*structpb.Value{})
	return pod, err
}

// recordedTaskName: from 2.14 the workflow passes the task key (--task_name) and the driver
// records the task under it (2.14.4 argocompiler/container.go:198, driver/container.go:126).
func recordedTaskName(key string, task *pipelinespec.PipelineTaskSpec) string {
	return key
}

// adminPodSpecPatch: this backend has no admin default run-as user or group (from 2.16).
func adminPodSpecPatch(*pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, *kubernetesplatform.KubernetesExecutorConfig, *pipelinespec.ComponentSpec, *pipelinespec.PipelineTaskSpec, *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	return nil, nil
}
