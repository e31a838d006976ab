// Adapter for KFP backends 2.15.x to 2.17.x: signatures at kubeflow/pipelines 2.15.0, 2.16.1
// and 2.17.0. Overlaid into backend/src/v2/driver with harness_test.go and lenient.go.
// initPodSpecPatch only grows trailing parameters over these releases (2.16 adds the ML
// pipeline server address and port, 2.17 plugin env vars), all of which the harness leaves
// at their zero value, so it is called through reflect with the ten leading arguments.
package driver

import (
	"context"
	"fmt"
	"reflect"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/v2/metadata"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
)

func uploadParse(raw []byte) (template.Template, error) {
	return template.New(raw, template.TemplateOptions{})
}

func runOptions() template.RunWorkflowOptions {
	return template.RunWorkflowOptions{RunID: harnessRunID, RunAt: 1}
}

// podSpecPatch: driver.Container's calls (2.15.0 backend/src/v2/driver/container.go:219-241;
// 2.16.1 :229-253; 2.17.0 :252-277).
func podSpecPatch(container *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, k8sCfg *kubernetesplatform.KubernetesExecutorConfig, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	opts := Options{Component: component, Task: task, Container: container, KubernetesExecutorConfig: k8sCfg}
	return podSpecPatchWith(opts, in)
}

// adminPodSpecPatch: the same with the driver's default run-as user and group set, as an
// admin configures them (2.16.1 backend/src/v2/driver/driver.go:96-100, k8s.go:701-716; 2.17.0
// driver.go:99-103, k8s.go:715-730). nil where the backend has no such option (2.15).
func adminPodSpecPatch(container *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, k8sCfg *kubernetesplatform.KubernetesExecutorConfig, component *pipelinespec.ComponentSpec, task *pipelinespec.PipelineTaskSpec, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	opts := Options{Component: component, Task: task, Container: container, KubernetesExecutorConfig: k8sCfg}
	fields := reflect.ValueOf(&opts).Elem()
	user, group := fields.FieldByName("DefaultRunAsUser"), fields.FieldByName("DefaultRunAsGroup")
	if !user.IsValid() || !group.IsValid() {
		return nil, nil
	}
	id := adminRunAsID
	user.Set(reflect.ValueOf(&id))
	group.Set(reflect.ValueOf(&id))
	return podSpecPatchWith(opts, in)
}

func podSpecPatchWith(opts Options, in *pipelinespec.ExecutorInput) (*k8score.PodSpec, error) {
	// executionID, pipelineName, runID, runName, pipelineLogLevel, publishLogs, cacheDisabled,
	// taskConfig as driver.Container passes them; then TLS flags, CA path, server addresses
	// (and from 2.17 plugin env vars): zero.
	taskConfig := &TaskConfig{}
	pod, err := callWithTrailingZeros(initPodSpecPatch, opts.Container, opts.Component, in, int64(1), "harness", harnessRunID, "harness", "1", "false", "true", taskConfig)
	if err != nil {
		return nil, err
	}
	err = extendPodSpecPatch(context.Background(), pod, opts, &metadata.DAG{Execution: &metadata.Execution{}}, nil, nil, map[string]*structpb.Value{}, taskConfig)
	return pod, err
}

// callWithTrailingZeros calls fn with args and the zero value of each later parameter; a
// leading argument whose type no longer matches fails the test (reflect panics).
func callWithTrailingZeros(fn interface{}, args ...interface{}) (*k8score.PodSpec, error) {
	f := reflect.ValueOf(fn)
	in := make([]reflect.Value, f.Type().NumIn())
	if len(args) > len(in) {
		return nil, fmt.Errorf("initPodSpecPatch takes %d parameters, the harness passes %d", len(in), len(args))
	}
	for i := range in {
		if i < len(args) {
			in[i] = reflect.ValueOf(args[i])
		} else {
			in[i] = reflect.Zero(f.Type().In(i))
		}
	}
	out := f.Call(in)
	pod, _ := out[0].Interface().(*k8score.PodSpec)
	err, _ := out[1].Interface().(error)
	return pod, err
}

// recordedTaskName: from 2.14 the workflow passes the task key (--task_name) and the driver
// records the task under it (2.17.0 backend/src/v2/cmd/driver/main.go:76,424).
func recordedTaskName(key string, task *pipelinespec.PipelineTaskSpec) string {
	return key
}
