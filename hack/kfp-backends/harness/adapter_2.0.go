// Adapter for KFP backends 2.0.x-2.2.x: the signatures of the functions the harness calls, at
// kubeflow/pipelines 2.0.5 and 2.2.0. Overlaid into backend/src/v2/driver with harness_test.go.
package driver

import (
	"encoding/json"

	"github.com/golang/protobuf/jsonpb"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/model"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/v2/metadata"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
)

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
// jsonpb.UnmarshalString (strict; 2.0.5 main.go:120,135; 2.2.0 :123,138), then driver.Container
// builds the pod spec patch with initPodSpecPatch and extendPodSpecPatch.
func driverPodSpec(containerJSON, k8sJSON string, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	container := &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec{}
	if err := jsonpb.UnmarshalString(containerJSON, container); err != nil {
		return nil, err
	}
	k8sCfg := &kubernetesplatform.KubernetesExecutorConfig{}
	if err := jsonpb.UnmarshalString(k8sJSON, k8sCfg); err != nil {
		return nil, err
	}
	pod, err := initPodSpecPatch(container, component, in, 1, "harness", "00000000-0000-0000-0000-000000000001")
	if err != nil {
		return nil, err
	}
	if err := extendPodSpecPatch(pod, k8sCfg, &metadata.DAG{}, map[string]*metadata.Execution{}); err != nil {
		return nil, err
	}
	return pod, nil
}

// driverPodSpecAdminDefaults: these backends have no admin default run-as user or group.
func driverPodSpecAdminDefaults(string, string, *pipelinespec.ComponentSpec, *pipelinespec.PipelineTaskSpec, *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	return nil, nil
}

// recordedTaskName: before 2.14 the driver records a task under taskInfo.name (2.0.5
// driver.go:271, metadata/client.go:501; 2.2.0 driver.go:282, client.go:535) and resolves
// producers by task key: "cannot find producer task" (2.0.5 driver.go:971-973; 2.2.0
// :1122-1124).
func recordedTaskName(key string, task *pipelinespec.PipelineTaskSpec) string {
	return task.GetTaskInfo().GetName()
}

func protoLenient(j []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(j, m)
}
