// The tao-kfp backend harness: KFP's own backend code, run against our compiled packages.
//
// This file is not built in this repository. hack/kfp-backends/run.sh adds it (and the
// adapter file for the version, adapter_*.go here) to KFP's backend/src/v2/driver package with
// `go test -overlay`, so the test reaches the driver's unexported pod-spec builders while KFP's
// code stays in the Go module cache. For each package in $TAOKFP_PACKAGES it runs, in order:
//
//	upload parse     the API server's template.New (strict protojson parse of PipelineSpec and
//	                 PlatformSpec), as the upload endpoint does;
//	run creation     that template's RunWorkflow, which compiles the run with the backend's
//	                 backend/src/v2/compiler/argocompiler, as creating a run does;
//	driver pod spec  for every task, the driver's own parse of its container and Kubernetes
//	                 config (cmd/driver/main.go) and its initPodSpecPatch + extendPodSpecPatch;
//	upstream lookups every input that names a producer task resolves under the name the
//	                 driver recorded that producer with (see recordedTaskName in the adapter).
//
// It writes $TAOKFP_OUT/result.json (read by run.sh for the matrix) and one pod per task in
// $TAOKFP_OUT/pods/<task-key>.json (other packages: pods/<package>/<task-key>.json).
package driver

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/v2/compiler"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	k8score "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// adminRunAsID is the default run-as user and group the admin-defaults probe sets in the
// driver's options (2.16+), different from any the package asks for.
const adminRunAsID int64 = 4242

// numGPUsRun is the num_gpus run parameter the harness creates runs with: train and retrain
// must get exactly this many GPUs.
const numGPUsRun = "2"

type harnessColumn struct {
	Pass   bool     `json:"pass"`
	Errors []string `json:"errors,omitempty"`
}

type harnessTask struct {
	Gets []string `json:"gets"`
	Lost []string `json:"lost,omitempty"`
}

type harnessPackage struct {
	Columns map[string]*harnessColumn `json:"columns"`
	Tasks   map[string]*harnessTask   `json:"tasks"`
}

type harnessResult struct {
	Version string `json:"version"`
	// Source: "proxy" (the Go module proxy, checksum-pinned by go.sum) or "local source tree at
	// commit X (tag V)" (KFP_BACKENDS_SRC, run-version.sh).
	Source   string                     `json:"source"`
	Packages map[string]*harnessPackage `json:"packages"`
}

const (
	colUpload   = "upload parse"
	colRun      = "run creation"
	colDriver   = "driver pod spec"
	colUpstream = "upstream lookups"
)

func (p *harnessPackage) fail(column, format string, args ...interface{}) {
	c := p.Columns[column]
	c.Pass = false
	c.Errors = append(c.Errors, fmt.Sprintf(format, args...))
}

func TestTaoKfpBackend(t *testing.T) {
	version, pkgDir, outDir := os.Getenv("TAOKFP_VERSION"), os.Getenv("TAOKFP_PACKAGES"), os.Getenv("TAOKFP_OUT")
	if version == "" || pkgDir == "" || outDir == "" {
		t.Skip("run through hack/kfp-backends/run.sh (TAOKFP_VERSION, TAOKFP_PACKAGES, TAOKFP_OUT)")
	}
	files, err := filepath.Glob(filepath.Join(pkgDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no packages in %s", pkgDir)
	}
	result := harnessResult{Version: version, Source: os.Getenv("TAOKFP_SOURCE"), Packages: map[string]*harnessPackage{}}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		p := &harnessPackage{Columns: map[string]*harnessColumn{}, Tasks: map[string]*harnessTask{}}
		for _, c := range []string{colUpload, colRun, colDriver, colUpstream} {
			p.Columns[c] = &harnessColumn{Pass: true}
		}
		result.Packages[name] = p
		// The shipped package's pods go straight under pods/ (what cluster16 creates); other
		// compiled variants under pods/<package>/.
		podDir := filepath.Join(outDir, "pods")
		if name != "tao-classification" {
			podDir = filepath.Join(podDir, name)
		}
		runPackage(t, p, file, podDir, filepath.Join(outDir, "workflows", name+".json"))
		for _, c := range []string{colUpload, colRun, colDriver, colUpstream} {
			for _, e := range p.Columns[c].Errors {
				t.Errorf("%s %s: %s: %s", version, name, c, e)
			}
		}
	}
	data, _ := json.MarshalIndent(result, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, "result.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runPackage(t *testing.T, p *harnessPackage, file, podDir, workflowFile string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// Upload: the API server's own parser.
	tmpl, err := uploadParse(raw)
	if err != nil {
		p.fail(colUpload, "%v", err)
		for _, c := range []string{colRun, colDriver, colUpstream} {
			p.fail(c, "not reached: upload refused")
		}
		return
	}
	// Run creation: the API server compiles the run into an Argo Workflow.
	params := runParameters(t, raw)
	workflow, err := createRun(tmpl, params)
	if err != nil {
		p.fail(colRun, "%v", err)
	} else {
		_ = os.MkdirAll(filepath.Dir(workflowFile), 0o755)
		_ = os.WriteFile(workflowFile, workflow, 0o644)
	}
	// The documents as the backend's protos read them.
	spec, platform := parseDocs(t, raw)
	tasks := spec.GetRoot().GetDag().GetTasks()
	keys := make([]string, 0, len(tasks))
	for k := range tasks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	deployment := map[string]json.RawMessage{}
	depBytes, _ := spec.GetDeploymentSpec().MarshalJSON()
	var dep struct {
		Executors map[string]json.RawMessage `json:"executors"`
	}
	_ = json.Unmarshal(depBytes, &dep)
	deployment = dep.Executors
	k8sExecutors := map[string]*structpb.Struct{}
	if k8s := platform.GetPlatforms()["kubernetes"]; k8s != nil {
		if ex := k8s.GetDeploymentSpec().GetExecutors(); ex != nil {
			k8sExecutors = ex
		}
	}
	// What the driver receives as --container: the compiler's parse of the deployment config
	// (unknown fields dropped) marshalled again into the workflow.
	deploy, err := compiler.GetDeploymentConfig(spec)
	if err != nil {
		p.fail(colDriver, "deployment config: %v", err)
		return
	}
	_ = os.MkdirAll(podDir, 0o755)
	for _, key := range keys {
		task := tasks[key]
		component := spec.GetComponents()[task.GetComponentRef().GetName()]
		label := component.GetExecutorLabel()
		var executor struct {
			Container json.RawMessage `json:"container"`
		}
		_ = json.Unmarshal(deployment[label], &executor)
		k8sJSON := "{}"
		if v, ok := k8sExecutors[label]; ok {
			b, _ := v.MarshalJSON()
			k8sJSON = string(b)
		}
		executorInput := executorInputFor(spec, task, component, params)
		given, _ := protojson.Marshal(deploy.GetExecutors()[label].GetContainer())
		pod, err := driverPodSpec(string(given), k8sJSON, component, task, executorInput)
		if err != nil {
			p.fail(colDriver, "task %s: %v", key, err)
			continue
		}
		p.Tasks[key] = describePod(p, key, pod, string(executor.Container), k8sJSON)
		// The same task where an admin set the driver's default run-as user and group.
		if admin, err := driverPodSpecAdminDefaults(string(given), k8sJSON, component, task, executorInput); err != nil {
			p.fail(colDriver, "task %s with admin run-as defaults: %v", key, err)
		} else if admin != nil {
			describeAdminDefaults(p.Tasks[key], pod, admin)
		}
		out := map[string]interface{}{
			"apiVersion": "v1",
			"kind":       "Pod",
			"metadata": map[string]interface{}{
				"name":   key,
				"labels": map[string]string{"tao-kfp/harness-task": key},
			},
			"spec": pod,
		}
		data, _ := json.MarshalIndent(out, "", "  ")
		_ = os.WriteFile(filepath.Join(podDir, key+".json"), data, 0o644)
	}
	// Upstream lookups: each producer must be found under the name the driver recorded it.
	for _, key := range keys {
		task := tasks[key]
		producers := map[string]bool{}
		for _, in := range task.GetInputs().GetParameters() {
			if pt := in.GetTaskOutputParameter().GetProducerTask(); pt != "" {
				producers[pt] = true
			}
		}
		for _, in := range task.GetInputs().GetArtifacts() {
			if pt := in.GetTaskOutputArtifact().GetProducerTask(); pt != "" {
				producers[pt] = true
			}
		}
		for producer := range producers {
			recorded := recordedTaskName(producer, tasks[producer])
			if recorded != producer {
				p.fail(colUpstream, "task %s: producer task, %s, not in tasks (the driver recorded it as %q)", key, producer, recorded)
			}
		}
	}
}

// runParameters: every run-form parameter at its default, a dataset and num_gpus=2.
func runParameters(t *testing.T, raw []byte) map[string]*structpb.Value {
	spec, _ := parseDocs(t, raw)
	params := map[string]*structpb.Value{}
	for name, def := range spec.GetRoot().GetInputDefinitions().GetParameters() {
		if def.GetDefaultValue() != nil {
			params[name] = def.GetDefaultValue()
		}
	}
	params["dataset_path"] = structpb.NewStringValue("datasets/harness")
	params["num_gpus"] = structpb.NewStringValue(numGPUsRun)
	return params
}

func parseDocs(t *testing.T, raw []byte) (*pipelinespec.PipelineSpec, *pipelinespec.PlatformSpec) {
	spec := &pipelinespec.PipelineSpec{}
	platform := &pipelinespec.PlatformSpec{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var probe map[string]interface{}
		_ = json.Unmarshal(j, &probe)
		if _, ok := probe["platforms"]; ok {
			if err := protoLenient(j, platform); err != nil {
				t.Fatal(err)
			}
		} else if _, ok := probe["root"]; ok {
			if err := protoLenient(j, spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	return spec, platform
}

// executorInputFor: the inputs the driver resolves for a task. Run parameters and constants
// are resolved as the driver does; task outputs are stand-in strings (their values only reach
// the user container, never the pod spec).
func executorInputFor(spec *pipelinespec.PipelineSpec, task *pipelinespec.PipelineTaskSpec, component *pipelinespec.ComponentSpec, params map[string]*structpb.Value) *pipelinespec.ExecutorInput {
	values := map[string]*structpb.Value{}
	for name, in := range task.GetInputs().GetParameters() {
		switch {
		case in.GetComponentInputParameter() != "":
			values[name] = params[in.GetComponentInputParameter()]
		case in.GetRuntimeValue() != nil:
			values[name] = in.GetRuntimeValue().GetConstant()
		case in.GetTaskOutputParameter() != nil:
			values[name] = structpb.NewStringValue("output-of-" + in.GetTaskOutputParameter().GetProducerTask())
		}
	}
	for name, def := range component.GetInputDefinitions().GetParameters() {
		if _, ok := values[name]; !ok && def.GetDefaultValue() != nil {
			values[name] = def.GetDefaultValue()
		}
	}
	return &pipelinespec.ExecutorInput{Inputs: &pipelinespec.ExecutorInput_Inputs{ParameterValues: values}}
}

// describePod says what the pod got from what the package asked for, and what was lost.
func describePod(p *harnessPackage, key string, pod *k8score.PodSpec, containerJSON, k8sJSON string) *harnessTask {
	var asked struct {
		Resources struct {
			Accelerator struct {
				Type          string `json:"type"`
				ResourceType  string `json:"resourceType"`
				Count         string `json:"count"`
				ResourceCount string `json:"resourceCount"`
			} `json:"accelerator"`
		} `json:"resources"`
	}
	_ = json.Unmarshal([]byte(containerJSON), &asked)
	var k8s map[string]interface{}
	_ = json.Unmarshal([]byte(k8sJSON), &k8s)
	task := &harnessTask{}
	gets := func(format string, args ...interface{}) { task.Gets = append(task.Gets, fmt.Sprintf(format, args...)) }
	lost := func(format string, args ...interface{}) { task.Lost = append(task.Lost, fmt.Sprintf(format, args...)) }
	main := pod.Containers[0]

	acc := asked.Resources.Accelerator
	gpuType := acc.ResourceType
	if gpuType == "" {
		gpuType = acc.Type
	}
	if gpuType != "" {
		want := acc.ResourceCount
		if want == "" {
			want = acc.Count
		}
		if strings.Contains(want, "num_gpus") {
			want = numGPUsRun
		}
		q, ok := main.Resources.Limits[k8score.ResourceName(gpuType)]
		switch {
		case !ok:
			lost("GPU limit %s=%s", gpuType, want)
			p.fail(colDriver, "task %s: no %s limit (wanted %s)", key, gpuType, want)
		case q.String() != want:
			p.fail(colDriver, "task %s: %s limit %s, wanted %s", key, gpuType, q.String(), want)
		default:
			gets("GPU limit %s=%s", gpuType, q.String())
		}
		if len(pod.NodeSelector) == 0 {
			p.fail(colDriver, "task %s: GPU step without a node selector", key)
		}
	}
	if ns, ok := k8s["nodeSelector"]; ok {
		if len(pod.NodeSelector) > 0 {
			gets("nodeSelector %v", pod.NodeSelector)
		} else {
			lost("nodeSelector %v", ns)
		}
	}
	if tol, ok := k8s["tolerations"]; ok {
		if len(pod.Tolerations) > 0 {
			gets("tolerations %d", len(pod.Tolerations))
		} else {
			lost("tolerations %v", tol)
		}
	}
	if _, ok := k8s["pvcMount"]; ok {
		claim, mount := "", ""
		for _, v := range pod.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
				for _, m := range main.VolumeMounts {
					if m.Name == v.Name {
						mount = m.MountPath
					}
				}
			}
		}
		if claim != "" && mount != "" {
			gets("workspace claim %s at %s", claim, mount)
		} else {
			lost("workspace claim")
			p.fail(colDriver, "task %s: no workspace claim mounted", key)
		}
	}
	if secrets, ok := k8s["secretAsEnv"].([]interface{}); ok {
		for _, s := range secrets {
			sm := s.(map[string]interface{})
			wantOptional, _ := sm["optional"].(bool)
			for _, m := range sm["keyToEnv"].([]interface{}) {
				env := m.(map[string]interface{})["envVar"].(string)
				found := false
				for _, e := range main.Env {
					if e.Name == env && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						found = true
						ref := e.ValueFrom.SecretKeyRef
						optional := ref.Optional != nil && *ref.Optional
						gets("env %s from Secret %s key %s (optional=%v)", env, ref.Name, ref.Key, optional)
						if wantOptional && !optional {
							lost("Secret %s optional: a missing Secret or key stops the pod at CreateContainerConfigError", ref.Name)
						}
					}
				}
				if !found {
					lost("env %s from a Secret", env)
					p.fail(colDriver, "task %s: env %s from Secret not set", key, env)
				}
			}
		}
	}
	if mounts, ok := k8s["emptyDirMounts"]; ok {
		shm := false
		for _, v := range pod.Volumes {
			if v.EmptyDir != nil {
				for _, m := range main.VolumeMounts {
					if m.Name == v.Name && m.MountPath == "/dev/shm" {
						shm = true
						size := ""
						if v.EmptyDir.SizeLimit != nil {
							size = v.EmptyDir.SizeLimit.String()
						}
						gets("/dev/shm emptyDir medium=%s sizeLimit=%s", v.EmptyDir.Medium, size)
					}
				}
			}
		}
		if !shm {
			lost("/dev/shm emptyDir %v", mounts)
		}
	}
	if sc, ok := k8s["securityContext"]; ok {
		if main.SecurityContext != nil && main.SecurityContext.RunAsUser != nil {
			gets("securityContext runAsUser=%d runAsGroup=%d", *main.SecurityContext.RunAsUser, derefInt64(main.SecurityContext.RunAsGroup))
		} else {
			lost("securityContext %v", sc)
		}
	}
	if ps, ok := k8s["imagePullSecret"]; ok {
		if len(pod.ImagePullSecrets) > 0 {
			gets("imagePullSecrets %v", pod.ImagePullSecrets)
		} else {
			lost("imagePullSecrets %v", ps)
		}
	}
	if pp, ok := k8s["imagePullPolicy"]; ok {
		if main.ImagePullPolicy != "" {
			gets("imagePullPolicy %s", main.ImagePullPolicy)
		} else {
			lost("imagePullPolicy %v", pp)
		}
	}
	if d, ok := k8s["activeDeadlineSeconds"]; ok {
		if pod.ActiveDeadlineSeconds != nil {
			gets("activeDeadlineSeconds %d", *pod.ActiveDeadlineSeconds)
		} else {
			lost("activeDeadlineSeconds %v", d)
		}
	}
	return task
}

// describeAdminDefaults: where the package sets runAsUser and the admin set a default, which
// one the pod gets (the driver keeps the admin's and only logs a warning from 2.16).
func describeAdminDefaults(task *harnessTask, pod, admin *k8score.PodSpec) {
	ours := pod.Containers[0].SecurityContext
	if ours == nil || ours.RunAsUser == nil {
		return
	}
	got := admin.Containers[0].SecurityContext
	if got != nil && got.RunAsUser != nil && *got.RunAsUser != *ours.RunAsUser {
		task.Lost = append(task.Lost, fmt.Sprintf("securityContext not applied when the admin sets a default run-as user/group [pod runAsUser %d, ours %d]", *got.RunAsUser, *ours.RunAsUser))
	}
}

func derefInt64(v *int64) int64 {
	if v == nil {
		return -1
	}
	return *v
}
