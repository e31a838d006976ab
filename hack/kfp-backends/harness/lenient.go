// Shared by the adapters for KFP backends 2.5 and later (adapter_2.5.go, adapter_2.14.go,
// adapter_2.15.go): from 2.4.1 the driver parses its flags with util.UnmarshalString, which
// allows unknown fields (2.5.0 backend/src/common/util/json.go:72-75). Overlaid into
// backend/src/v2/driver with harness_test.go and one adapter_*.go.
package driver

import (
	"encoding/json"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/config/proxy"
	"github.com/kubeflow/pipelines/backend/src/apiserver/model"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/common/util"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
)

// harnessRunID is the run id every harness run gets.
const harnessRunID = "00000000-0000-0000-0000-000000000001"

// The driver's main initialises its proxy settings before anything else (cmd/driver/main.go).
func init() { proxy.InitializeConfig("", "", "") }

// createRun: what creating a run does with the uploaded template (the API server compiles it
// into an Argo Workflow with argocompiler).
func createRun(tmpl template.Template, params map[string]*structpb.Value) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	run := &model.Run{DisplayName: "harness", Namespace: "kubeflow"}
	setText(&run.RuntimeConfig.Parameters, string(p))
	spec, err := tmpl.RunWorkflow(run, runOptions())
	if err != nil {
		return nil, err
	}
	return []byte(spec.ToStringForStore()), nil
}

// driverPodSpecAdminDefaults: driverPodSpec where an admin has set the driver's default run-as
// user and group (adminPodSpecPatch); nil where the backend has no such option.
func driverPodSpecAdminDefaults(containerJSON, k8sJSON string, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	container := &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec{}
	if err := util.UnmarshalString(containerJSON, container); err != nil {
		return nil, err
	}
	k8sCfg := &kubernetesplatform.KubernetesExecutorConfig{}
	if err := util.UnmarshalString(k8sJSON, k8sCfg); err != nil {
		return nil, err
	}
	return adminPodSpecPatch(container, k8sCfg, component, task, in)
}

// driverPodSpec: cmd/driver/main.go parses --container and --kubernetes_config with
// util.UnmarshalString (unknown fields allowed); then driver.Container builds the pod spec
// with initPodSpecPatch and extendPodSpecPatch (podSpecPatch in the version's adapter).
func driverPodSpec(containerJSON, k8sJSON string, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	container := &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec{}
	if err := util.UnmarshalString(containerJSON, container); err != nil {
		return nil, err
	}
	k8sCfg := &kubernetesplatform.KubernetesExecutorConfig{}
	if err := util.UnmarshalString(k8sJSON, k8sCfg); err != nil {
		return nil, err
	}
	return podSpecPatch(container, k8sCfg, component, task, in)
}

// setText: RuntimeConfig.Parameters is a string up to 2.14 and a model.LargeText from 2.15.
func setText[T ~string](field *T, text string) { *field = T(text) }

func protoLenient(j []byte, m proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(j, m)
}
