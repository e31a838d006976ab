// Adapter for KFP backend 2.5.x: signatures at kubeflow/pipelines 2.5.0. Overlaid into
// backend/src/v2/driver with harness_test.go. The driver parses its flags with
// util.UnmarshalString, which allows unknown fields (common/util/json.go:72-75).
package driver

import (
	"encoding/json"

	"context"

	"github.com/kubeflow/pipelines/backend/src/common/util"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/config/proxy"
	"github.com/kubeflow/pipelines/backend/src/apiserver/model"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/v2/metadata"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
)

// The driver's main initialises its proxy settings before anything else (cmd/driver/main.go).
func init() { proxy.InitializeConfig("", "", "") }

func uploadParse(raw []byte) (template.Template, error) { return template.New(raw) }

func createRun(tmpl template.Template, params map[string]*structpb.Value) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	run := &model.Run{DisplayName: "harness", Namespace: "kubeflow"}
	run.RuntimeConfig.Parameters = string(p)
	spec, err := tmpl.RunWorkflow(run, template.RunWorkflowOptions{RunId: "00000000-0000-0000-0000-000000000001", RunAt: 1})
	if err != nil {
		return nil, err
	}
	return []byte(spec.ToStringForStore()), nil
}

// driverPodSpec: cmd/driver/main.go parses --container and --kubernetes_config with
// util.UnmarshalString (unknown fields allowed), then driver.Container builds the pod spec with
// initPodSpecPatch and extendPodSpecPatch (2.0.5 driver.go:334-347).
func driverPodSpec(containerJSON, k8sJSON string, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	container := &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec{}
	if err := util.UnmarshalString(containerJSON, container); err != nil {
		return nil, err
	}
	k8sCfg := &kubernetesplatform.KubernetesExecutorConfig{}
	if err := util.UnmarshalString(k8sJSON, k8sCfg); err != nil {
		return nil, err
	}
	pod, err := initPodSpecPatch(container, component, in, 1, "harness", "00000000-0000-0000-0000-000000000001", "1", "false")
	if err != nil {
		return nil, err
	}
	if err := extendPodSpecPatch(context.Background(), pod, Options{Component: component, Task: task, Container: container, KubernetesExecutorConfig: k8sCfg}, &metadata.DAG{Execution: &metadata.Execution{}}, nil, nil, map[string]*structpb.Value{}); err != nil {
		return nil, err
	}
	return pod, nil
}

// recordedTaskName: before 2.14 the driver records a task under taskInfo.name
// (2.5.0 driver.go:329, metadata/client.go:549-550) and resolves producers by task key
// (driver.go:1828-1830).
func recordedTaskName(key string, task *pipelinespec.PipelineTaskSpec) string {
	return task.GetTaskInfo().GetName()
}

func protoLenient(j []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(j, m)
}
