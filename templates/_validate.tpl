{{/*
Checks of values that a schema cannot say well. Types, enums and patterns are in values.schema.json.
One define per topic (tao-kfp.validate.<topic>), each called with the root context and rendering the
JSON list of its messages; "tao-kfp.validate" runs them all and fails once with every message, so one
`helm install` shows all of them. Every message names the key and the fix. Included once, from
templates/validate.yaml. Rules that tao-kfp also applies (tao_kfp.value_rules, the environment config,
the upload) share their case lists with it in tests/chart/test_rule_parity.py.
*/}}
{{- define "tao-kfp.validate" -}}
{{- $errors := list }}
{{- range $topic := list "files" "workspace" "ngc" "gpu" "tao" "kfp" "upload" "runParams" "names" "metadata" "resources" "specs" }}
{{- $errors = concat $errors (include (printf "tao-kfp.validate.%s" $topic) $ | fromJsonArray) }}
{{- end }}
{{- include "tao-kfp.failOn" $errors }}
{{- end }}

{{/* Files the chart ships (written by `make compile` and the spec module). */}}
{{- define "tao-kfp.validate.files" -}}
{{- $errors := list }}
{{- $package := include "tao-kfp.pipelinePackage" . }}
{{- if and .Values.upload.enabled $package (not (.Files.Get $package)) }}
{{- $errors = append $errors (printf "%s is missing from the chart (the pipeline of tao.version %v): run `make compile` in the chart source before `helm install`/`helm package` (or set upload.enabled=false)" $package .Values.tao.version) }}
{{- end }}
{{- $spec := include "tao-kfp.workspaceSpec" . }}
{{- if and .Values.workspace.init.enabled $spec (not (.Files.Get $spec)) }}
{{- $errors = append $errors (printf "%s is missing from the chart: the workspace init Job renders the TAO spec of tao.version %v from it; restore it from the chart source (or set workspace.init.enabled=false)" $spec .Values.tao.version) }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Workspace storage: exactly one mode's settings, the NFS source, the dataset URL, the mount path. */}}
{{- define "tao-kfp.validate.workspace" -}}
{{- $errors := list }}
{{- $w := .Values.workspace }}
{{- if eq $w.mode "nfs" }}
{{- if not $w.nfs.server }}
{{- $errors = append $errors "workspace.nfs.server is empty but workspace.mode is nfs: set workspace.nfs.server to the NFS server's host name or IP" }}
{{- end }}
{{- if not $w.nfs.path }}
{{- $errors = append $errors "workspace.nfs.path is empty but workspace.mode is nfs: set workspace.nfs.path to the exported directory (e.g. /exports/tao)" }}
{{- end }}
{{- if $w.existingClaim }}
{{- $errors = append $errors "workspace.existingClaim is set but workspace.mode is nfs: use workspace.mode=existingClaim for your claim, or clear workspace.existingClaim" }}
{{- end }}
{{- else if eq $w.mode "existingClaim" }}
{{- if not $w.existingClaim }}
{{- $errors = append $errors "workspace.existingClaim is empty but workspace.mode is existingClaim: set it to the name of a PersistentVolumeClaim in the release namespace" }}
{{- end }}
{{- if or $w.nfs.server $w.nfs.path }}
{{- $errors = append $errors "workspace.nfs.server/path are set together with workspace.mode=existingClaim: an existing claim brings its own volume; clear workspace.nfs.* or use workspace.mode=nfs" }}
{{- end }}
{{- else }}
{{- if $w.existingClaim }}
{{- $errors = append $errors "workspace.existingClaim is set but workspace.mode is dynamic: set workspace.mode=existingClaim to use it" }}
{{- end }}
{{- if or $w.nfs.server $w.nfs.path }}
{{- $errors = append $errors "workspace.nfs.server/path are set but workspace.mode is dynamic: set workspace.mode=nfs to use the NFS export" }}
{{- end }}
{{- end }}
{{- /* Kubernetes builds the mount source as <server>:<path> (bracketing an IPv6 address), so a port
makes "host:2049:/path", which mount.nfs cannot parse. Same rule as tao_kfp.value_rules.nfs_server_problems. */}}
{{- if regexMatch "^([^:\\[\\]]+|\\[[^\\]]*\\]):[0-9]*$" $w.nfs.server }}
{{- $errors = append $errors (printf "workspace.nfs.server=%s has a port: Kubernetes mounts <server>:<path> and NFSv4 uses port 2049; give the host name or IP only (a port other than 2049 goes in workspace.nfs.mountOptions as port=N)" $w.nfs.server) }}
{{- end }}
{{- with include "tao-kfp.urlCredentials" $w.init.datasetUrl }}
{{- $errors = append $errors (printf "workspace.init.datasetUrl carries %s, which the init Job would print and store in the workspace: serve the archive from a URL without credentials (e.g. a bucket readable from the cluster), or copy the dataset into the workspace's data/ yourself" .) }}
{{- end }}
{{- if and $w.init.datasetSha256 (not $w.init.datasetUrl) }}
{{- $errors = append $errors "workspace.init.datasetSha256 is set without workspace.init.datasetUrl: set the archive URL too, or clear the checksum" }}
{{- end }}
{{- if and .Values.specs.force (not $w.init.enabled) }}
{{- $errors = append $errors "specs.force=true has no effect with workspace.init.enabled=false: enable the init Job, or drop specs.force" }}
{{- else if and .Values.specs.force (not (include "tao-kfp.workspaceSpec" .)) }}
{{- $errors = append $errors (printf "specs.force=true has no effect with tao.version %v: its route reads no spec from the workspace, so the init Job writes none; drop specs.force (or set tao.version to \"3\" or \"5\")" .Values.tao.version) }}
{{- end }}
{{- if and .Values.tests.workspace.enabled (not $w.init.enabled) }}
{{- $errors = append $errors "tests.workspace.enabled=true but workspace.init.enabled=false: the test expects the layout the init Job writes; disable the test or enable the init Job" }}
{{- end }}
{{- /* The workspace is written by the init Job and every pipeline step. */}}
{{- if and (eq $w.mode "existingClaim" | not) (not (or (has "ReadWriteMany" $w.accessModes) (has "ReadWriteOnce" $w.accessModes) (has "ReadWriteOncePod" $w.accessModes))) }}
{{- $errors = append $errors "workspace.accessModes has no writable mode: the init Job and every pipeline step write the workspace; use ReadWriteMany (steps on several nodes) or ReadWriteOnce (one node)" }}
{{- end }}
{{- /* The mount must not hide what the pods need. The schema already refuses ".." and relative paths. */}}
{{- $mount := $w.mountPath }}
{{- range $reserved := list "/tmp" "/dev/shm" "/dev" "/proc" "/sys" "/etc" "/home/tao-kfp" "/etc/tao-kfp" "/var/run/secrets" "/usr" "/bin" "/lib" }}
{{- if or (eq $mount $reserved) (hasPrefix (printf "%s/" $reserved) $mount) (hasPrefix (printf "%s/" $mount) $reserved) }}
{{- $errors = append $errors (printf "workspace.mountPath=%s overlaps %s, which the chart's pods or the pipeline steps need (scratch space, shared memory, config, system files): use a path of its own such as /workspace" $mount $reserved) }}
{{- break }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* NGC credentials: either a key (the chart creates the Secrets) or existing Secrets. */}}
{{- define "tao-kfp.validate.ngc" -}}
{{- $errors := list }}
{{- $n := .Values.ngc }}
{{- if and $n.apiKey $n.existingSecret }}
{{- $errors = append $errors "ngc.apiKey and ngc.existingSecret are both set: give the key (the chart creates the Secrets) or name your Secret, not both" }}
{{- end }}
{{- if and $n.apiKey $n.existingPullSecret }}
{{- $errors = append $errors "ngc.apiKey and ngc.existingPullSecret are both set: with ngc.apiKey the chart creates the nvcr.io pull Secret; clear one of them" }}
{{- end }}
{{- if not (or $n.apiKey $n.existingSecret) }}
{{- $errors = append $errors "no NGC credentials: set ngc.apiKey (e.g. --set ngc.apiKey=$NGC_API_KEY) or ngc.existingSecret (a Secret with keys ngc.secretKeys.apiKey and ngc.secretKeys.modelKey)" }}
{{- end }}
{{- if and $n.apiKey (not $n.modelKey) }}
{{- $errors = append $errors "ngc.modelKey is empty: TAO needs a model key to decrypt models; NGC's pretrained TAO models use nvidia_tlt" }}
{{- end }}
{{- /* Every TAO step passes the key as `-k <key>`, and TAO 5's launchers re-split their command line
(bash -c '... {args}' run through shlex.split: NVIDIA/tao_deploy nvidia_tao_deploy/cv/common/entrypoint/
entrypoint_proto.py:229-244), so white space or a quote breaks every TAO 5 step. The same pattern as
tao_kfp.tao.LAUNCHER_SAFE_PATTERN (what shlex.quote leaves unquoted). The key is not printed. */}}
{{- if and $n.modelKey (not (regexMatch "^[A-Za-z0-9_@%+=:,./-]+$" $n.modelKey)) }}
{{- $errors = append $errors "ngc.modelKey holds a character TAO's launchers cannot carry (white space, a quote, or one bash interprets): they join every argument into one `bash -c '...'` string and split it again, so every TAO step would get a broken -k argument; use only letters, digits and _ @ % + = : , . / - (NGC's pretrained models use nvidia_tlt)" }}
{{- end }}
{{- if eq $n.secretKeys.apiKey $n.secretKeys.modelKey }}
{{- $errors = append $errors "ngc.secretKeys.apiKey and ngc.secretKeys.modelKey are the same key: the Secret needs two distinct keys" }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* GPU scheduling of the pipeline's GPU steps: rules KFP does not check but Kubernetes applies when it creates
the step's pod, hours later (k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateTolerations). The
same rules are in the environment config (tao_kfp.environment) for `tao-kfp render`. */}}
{{- define "tao-kfp.validate.gpu" -}}
{{- $errors := list }}
{{- $g := .Values.gpu }}
{{- if lt (int $g.count) 1 }}
{{- $errors = append $errors (printf "gpu.count is %v: the GPU steps need at least one GPU; set gpu.count=1 (use gpu.resource for a MIG slice)" $g.count) }}
{{- end }}
{{- if and .Values.tests.gpuNodes.enabled (not (include "tao-kfp.gpuNodeSelector" . | fromYaml)) }}
{{- $errors = append $errors "tests.gpuNodes.enabled=true with an empty gpu.nodeSelector: set a selector (e.g. nvidia.com/gpu.present: \"true\") or disable the test" }}
{{- end }}
{{- range $i, $t := $g.tolerations }}
{{- if not $t.key }}
{{- $errors = append $errors (printf "gpu.tolerations[%d] has no key: a toleration without a key tolerates every taint (including node.kubernetes.io/unreachable); name the taint key, e.g. nvidia.com/gpu" $i) }}
{{- end }}
{{- if and (eq ($t.operator | default "Equal") "Exists") $t.value }}
{{- $errors = append $errors (printf "gpu.tolerations[%d] has operator Exists and value %s: Exists matches any value, Kubernetes refuses a value with it; drop the value or use operator Equal" $i $t.value) }}
{{- end }}
{{- if and (hasKey $t "tolerationSeconds") (ne ($t.effect | default "") "NoExecute") }}
{{- $errors = append $errors (printf "gpu.tolerations[%d] has tolerationSeconds without effect NoExecute: Kubernetes accepts tolerationSeconds only with NoExecute; set effect: NoExecute or drop tolerationSeconds" $i) }}
{{- end }}
{{- end }}
{{- if contains "kubernetes.io/" $g.resource }}
{{- $errors = append $errors (printf "gpu.resource=%s is in the kubernetes.io domain, reserved for native resources (k8s.io/kubernetes pkg/apis/core/helper IsExtendedResourceName): extended resources such as nvidia.com/gpu live in a vendor domain" $g.resource) }}
{{- end }}
{{- if and (hasPrefix "nvidia.com/" $g.resource) (not (regexMatch "^nvidia\\.com/(gpu|gpu\\.shared|mig-([1-7]c\\.)?[1-8]g\\.[0-9]+gb(\\+me)?)$" $g.resource)) }}
{{- $errors = append $errors (printf "gpu.resource=%s is not a resource NVIDIA's device plugin advertises: use nvidia.com/gpu (whole GPUs) or a MIG slice such as nvidia.com/mig-1g.10gb (kubectl describe node shows the names)" $g.resource) }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* TAO version and command agree: the same rule as tao_kfp.environment.version_problems. A TAO command name is
the last path segment of any word of the command; the CPU stand-in plays only the TF1 versions
(tao_kfp.cpu_backend.common.TAO_VERSIONS), and its --tao-version (default 3) must be the version. */}}
{{- define "tao-kfp.validate.tao" -}}
{{- $errors := list }}
{{- $t := .Values.tao }}
{{- $version := $t.version | toString }}
{{- $words := regexSplit "\\s+" (trim $t.entrypoint) -1 }}
{{- $names := list }}
{{- range $words }}
{{- $names = append $names (regexReplaceAll "^.*/" . "") }}
{{- end }}
{{- $commands := dict "3" "classification" "5" "classification_tf1" "6" "classification_pyt" }}
{{- range $other, $command := $commands }}
{{- if and (has $command $names) (ne $other $version) }}
{{- $errors = append $errors (printf "tao.entrypoint %q is TAO %s's command but tao.version is %s: set tao.version=%s, or tao.entrypoint=%s%s" $t.entrypoint $other $version $other (get $commands $version) (ternary " (5.0 writes .hdf5 checkpoints; a mismatch crashes prune)" "" (eq $version "5"))) }}
{{- end }}
{{- end }}
{{- if has "tao_kfp.cpu_backend" $words }}
{{- $flag := "3" }}
{{- range $i, $word := $words }}
{{- if and (eq $word "--tao-version") (lt (add1 $i) (len $words)) }}
{{- $flag = index $words (add1 $i) }}
{{- end }}
{{- end }}
{{- $played := list "3" "5" }}
{{- if not (has $version $played) }}
{{- $errors = append $errors (printf "tao.entrypoint runs the CPU backend, which plays only TAO %s (the TF1 routes), but tao.version is %s: its route runs NVIDIA's own %s (on a CPU: make demo-tao, or tao-kfp run-local --tao-version %s with the envs of make tao-env); set tao.entrypoint=%s, or tao.version to one the backend plays" (join " and " $played) $version (get $commands $version) $version (get $commands $version)) }}
{{- else if ne $flag $version }}
{{- $errors = append $errors (printf "tao.entrypoint runs the CPU backend as TAO %s but tao.version is %s: add --tao-version %s to the command" $flag $version $version) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* KFP access: mode and namespaces, CA bundle, the host URL, the ClusterRole of the upload. */}}
{{- define "tao-kfp.validate.kfp" -}}
{{- $errors := list }}
{{- $k := .Values.kfp }}
{{- if and (eq $k.mode "multiUser") (not $k.namespace) }}
{{- $errors = append $errors "kfp.namespace is empty but kfp.mode is multiUser: set it to your Kubeflow profile namespace (kubectl get profiles)" }}
{{- end }}
{{- if and (eq $k.mode "standalone") $k.namespace }}
{{- $errors = append $errors "kfp.namespace is set but kfp.mode is standalone: standalone KFP has no profile namespaces; set kfp.mode=multiUser or clear kfp.namespace" }}
{{- end }}
{{- if and $k.caBundle.configMap $k.caBundle.secret }}
{{- $errors = append $errors "kfp.caBundle.configMap and kfp.caBundle.secret are both set: name one source for the CA bundle" }}
{{- end }}
{{- /* Credentials in the host would be printed by NOTES, the Job arguments and every log line of the upload. */}}
{{- $credentials := include "tao-kfp.urlCredentials" $k.host }}
{{- if $credentials }}
{{- $errors = append $errors (printf "kfp.host carries %s, which NOTES, the upload Job's arguments and its logs would show: give the bare API URL (e.g. http://ml-pipeline.kubeflow:8888); multi-user KFP authenticates with the ServiceAccount token the chart projects (kfp.mode=multiUser), never a token in the URL" $credentials) }}
{{- else if and (or $k.caBundle.configMap $k.caBundle.secret) (not (hasPrefix "https://" $k.host)) }}
{{- $errors = append $errors (printf "kfp.caBundle is set but kfp.host (%s) is not https: use an https:// host or drop the CA bundle" $k.host) }}
{{- end }}
{{- /* Where the pipeline's pods run. A pod mounts claims and reads Secrets of its own namespace only, so the
workspace claim, the NGC Secrets and everything that mounts the claim must be in the namespace where KFP
runs the pipeline's pods: KFP's own namespace for standalone KFP, the profile namespace for multi-user KFP
(docs/kfp-backends.md "Where pipeline pods run"). */}}
{{- $podNamespace := include "tao-kfp.pipelineNamespace" . }}
{{- $host := ternary "(a URL with credentials)" $k.host (not (empty $credentials)) }}
{{- if and (eq $k.mode "multiUser") (not $podNamespace) }}
{{- /* An empty kfp.namespace: reported above with its own fix. */}}
{{- else if not $podNamespace }}
{{- $errors = append $errors (printf "kfp.pipelineNamespace is empty and kfp.host (%s) does not name KFP's namespace (<service>.<namespace>.svc...): standalone KFP runs every pipeline pod in its own namespace (usually kubeflow), where the workspace claim and Secrets must be; set kfp.pipelineNamespace to it and install there with -n" $host) }}
{{- else if ne $podNamespace .Release.Namespace }}
{{- if eq $k.mode "multiUser" }}
{{- $errors = append $errors (printf "the release namespace is %s but multi-user KFP runs this pipeline's pods in the profile namespace kfp.namespace=%s, and a pod can mount only claims and Secrets of its own namespace: install with -n %s" .Release.Namespace $podNamespace $podNamespace) }}
{{- else }}
{{- $errors = append $errors (printf "the release namespace is %s but standalone KFP runs every pipeline pod in its own namespace %s (from %s), and a pod can mount only claims and Secrets of its own namespace: install with -n %s (or set kfp.pipelineNamespace if KFP runs its pods elsewhere)" .Release.Namespace $podNamespace (ternary "kfp.pipelineNamespace" "kfp.host" (not (empty $k.pipelineNamespace))) $podNamespace) }}
{{- end }}
{{- end }}
{{- if and (eq $k.mode "multiUser") $k.pipelineNamespace (ne $k.pipelineNamespace $k.namespace) }}
{{- $errors = append $errors (printf "kfp.pipelineNamespace (%s) differs from kfp.namespace (%s) in multiUser mode: multi-user KFP runs pipeline pods in the profile namespace; clear kfp.pipelineNamespace" $k.pipelineNamespace $k.namespace) }}
{{- end }}
{{- /* The upload's ServiceAccount gets kfp.clusterRole in the profile namespace. An allow-list: KFP's own role
(kubeflow/pipelines manifests/kustomize/base/installs/multi-user/view-edit-cluster-roles.yaml, 2.15.0 line 12:
kubeflow-pipelines-edit aggregates create/update/delete on pipelines, versions, experiments, runs and recurring
runs). Kubeflow's kubeflow-edit also grants Secrets, pods/exec and impersonation, so any other role needs the
explicit opt-in kfp.customClusterRole=true, and cluster-wide admin roles are refused even then. */}}
{{- if eq $k.mode "multiUser" }}
{{- if or (has $k.clusterRole (list "cluster-admin" "admin" "edit" "kubeflow-admin" "kubeflow-edit")) (hasPrefix "system:" $k.clusterRole) }}
{{- $errors = append $errors (printf "kfp.clusterRole=%s would give the upload Job's ServiceAccount broad rights in %s (secrets, pods, RBAC): bind kubeflow-pipelines-edit (KFP's own role for pipelines, runs and experiments) or a role limited to pipelines.kubeflow.org" $k.clusterRole $k.namespace) }}
{{- else if and (ne $k.clusterRole "kubeflow-pipelines-edit") (not $k.customClusterRole) }}
{{- $errors = append $errors (printf "kfp.clusterRole=%s is not KFP's role kubeflow-pipelines-edit: the upload needs create/update on pipelines.kubeflow.org only (kubeflow-pipelines-view cannot upload); use kubeflow-pipelines-edit, or set kfp.customClusterRole=true if %s is a role you wrote for that" $k.clusterRole $k.clusterRole) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Upload options: what the upload Job and its schedule need. */}}
{{- define "tao-kfp.validate.upload" -}}
{{- $errors := list }}
{{- $u := .Values.upload }}
{{- if and $u.runFirst (not $u.experiment) }}
{{- $errors = append $errors "upload.runFirst=true needs upload.experiment: set an experiment name for the run" }}
{{- end }}
{{- if and $u.recurringCron (not $u.experiment) }}
{{- $errors = append $errors "upload.recurringCron is set without upload.experiment: set an experiment name for the recurring run" }}
{{- end }}
{{- if and $u.runParams (not (or $u.runFirst $u.recurringCron)) }}
{{- $errors = append $errors "upload.runParams is set but no run is started: set upload.runFirst=true or upload.recurringCron" }}
{{- end }}
{{- if and .Values.tests.kfp.enabled (not $u.enabled) }}
{{- $errors = append $errors "tests.kfp.enabled=true but upload.enabled=false: the test checks the uploaded pipeline version; disable the test or enable the upload" }}
{{- end }}
{{- with $u.recurringCron }}
{{- range (include "tao-kfp.cron" . | fromYaml).problems }}
{{- $errors = append $errors (printf "upload.recurringCron %q: %s" $u.recurringCron .) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* upload.runParams fit the shipped pipeline's declared inputs (names, types, required ones): the same rules as
the upload's run-parameter check, which checks again in the upload Job before any API call; here the chart reads
the compiled pipeline it uploads (tao.version's route's, tao-kfp.pipelinePackage). */}}
{{- define "tao-kfp.validate.runParams" -}}
{{- $errors := list }}
{{- $u := .Values.upload }}
{{- $text := .Files.Get (include "tao-kfp.pipelinePackage" .) }}
{{- if and $u.enabled $text (or $u.runParams $u.runFirst $u.recurringCron) }}
{{- /* The package is the pipeline spec, then "---", then the platform spec. */}}
{{- $spec := splitList "\n---\n" $text | first | fromYaml }}
{{- $declared := dig "root" "inputDefinitions" "parameters" dict $spec }}
{{- if $declared }}
{{- $names := keys $declared | sortAlpha | join ", " }}
{{- $words := dict "STRING" "a string" "NUMBER_INTEGER" "an integer" "NUMBER_DOUBLE" "a number" "BOOLEAN" "true or false" "LIST" "a list" "STRUCT" "a mapping" }}
{{- range $name, $value := $u.runParams }}
{{- $parameter := get $declared $name }}
{{- if not $parameter }}
{{- $errors = append $errors (printf "upload.runParams.%s is not a parameter of the pipeline: remove it, or use one of %s" $name $names) }}
{{- else }}
{{- $type := $parameter.parameterType | default "STRING" }}
{{- $kind := kindOf $value }}
{{- $fits := true }}
{{- if eq $type "STRING" }}
{{- $fits = eq $kind "string" }}
{{- else if eq $type "NUMBER_INTEGER" }}
{{- /* Numbers from values files arrive as float64: 5 is an integer, 2.5 is not. */}}
{{- $fits = or (has $kind (list "int" "int64")) (and (eq $kind "float64") (eq (float64 $value) (floor $value))) }}
{{- else if eq $type "NUMBER_DOUBLE" }}
{{- $fits = has $kind (list "int" "int64" "float64") }}
{{- else if eq $type "BOOLEAN" }}
{{- $fits = eq $kind "bool" }}
{{- else if eq $type "LIST" }}
{{- $fits = eq $kind "slice" }}
{{- else if eq $type "STRUCT" }}
{{- $fits = eq $kind "map" }}
{{- end }}
{{- if not $fits }}
{{- $errors = append $errors (printf "upload.runParams.%s must be %s (the pipeline declares %s), got %s" $name (get $words $type) $type (toJson $value)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if or $u.runFirst $u.recurringCron }}
{{- range $name, $parameter := $declared }}
{{- if not (or $parameter.isOptional (hasKey $parameter "defaultValue") (hasKey $u.runParams $name)) }}
{{- $errors = append $errors (printf "upload.runParams.%s is required by the pipeline (it has no default) for the run that upload.runFirst/upload.recurringCron starts: set it" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Generated names: a Job's name is its pods' job-name label value, at most 63 characters
(k8s.io/apimachinery/pkg/util/validation/validation.go, LabelValueMaxLength). */}}
{{- define "tao-kfp.validate.names" -}}
{{- $errors := list }}
{{- range $suffix := list "upload" "workspace-init" }}
{{- $job := printf "%s-%s" (include "tao-kfp.fullname" $) $suffix }}
{{- if gt (len $job) 63 }}
{{- $errors = append $errors (printf "the Job name %s has %d characters; Kubernetes puts it in the job-name label, at most 63: shorten fullnameOverride or the release name" $job (len $job)) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Labels and annotations the chart controls (Helm and the chart's selectors depend on them), and their size. */}}
{{- define "tao-kfp.validate.metadata" -}}
{{- $errors := list }}
{{- $v := .Values }}
{{- $controlLabels := list "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/managed-by" "app.kubernetes.io/part-of" "app.kubernetes.io/component" }}
{{- range $key, $_ := $v.commonLabels }}
{{- if has $key $controlLabels }}
{{- $errors = append $errors (printf "commonLabels.%s is a label the chart sets itself (Helm and the NetworkPolicy selector rely on it): remove it from commonLabels" $key) }}
{{- end }}
{{- end }}
{{- range $key, $_ := $v.commonAnnotations }}
{{- if or (hasPrefix "helm.sh/" $key) (hasPrefix "meta.helm.sh/" $key) }}
{{- $errors = append $errors (printf "commonAnnotations.%s is a Helm control annotation (hooks, resource policy, ownership): remove it from commonAnnotations; use workspace.keep for the resource policy" $key) }}
{{- end }}
{{- end }}
{{- range $key, $_ := $v.workspace.claimAnnotations }}
{{- if or (hasPrefix "helm.sh/" $key) (hasPrefix "meta.helm.sh/" $key) }}
{{- $errors = append $errors (printf "workspace.claimAnnotations.%s is a Helm control annotation: remove it; use workspace.keep for helm.sh/resource-policy" $key) }}
{{- end }}
{{- end }}
{{- /* Kubernetes caps an object's annotations at 256 KiB in total, keys plus values
(k8s.io/apimachinery/pkg/api/validation/objectmeta.go, TotalAnnotationSizeLimitB); the chart adds its own. */}}
{{- $annotationBytes := 0 }}
{{- range $key, $value := merge (dict) $v.commonAnnotations $v.workspace.claimAnnotations }}
{{- $annotationBytes = add $annotationBytes (len $key) (len (toString $value)) }}
{{- end }}
{{- if gt $annotationBytes 204800 }}
{{- $errors = append $errors (printf "commonAnnotations and workspace.claimAnnotations hold %d bytes (limit 204800): Kubernetes refuses objects whose annotations exceed 256 KiB, and the chart adds its own; move large data out of annotations" $annotationBytes) }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Resources of chart containers. */}}
{{- define "tao-kfp.validate.resources" -}}
{{- $errors := list }}
{{- /* Requests not above limits (the API server refuses it: k8s.io/kubernetes pkg/apis/core/validation/validation.go
ValidateResourceRequirements). */}}
{{- $requests := .Values.resources.requests | default dict }}
{{- range $name, $limit := .Values.resources.limits }}
{{- if hasKey $requests $name }}
{{- if gt (include "tao-kfp.quantityValue" (get $requests $name) | float64) (include "tao-kfp.quantityValue" $limit | float64) }}
{{- $errors = append $errors (printf "resources.requests.%s (%s) is above resources.limits.%s (%s): Kubernetes refuses a request above its limit; lower the request or raise the limit" $name (include "tao-kfp.quantity" (get $requests $name)) $name (include "tao-kfp.quantity" $limit)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Python with the kfp client needs memory: `python -c "import kfp.client"` peaks at 83 MB RSS (measured with
/usr/bin/time -v in this repository's .venv), so a smaller limit OOM-kills the upload Job before it does anything. */}}
{{- with .Values.resources.limits.memory }}
{{- if lt (include "tao-kfp.quantityValue" . | float64) 134217728.0 }}
{{- $errors = append $errors (printf "resources.limits.memory=%s is below 128Mi: the chart's Python containers (kfp client) need about 100 MB and would be OOM-killed; set resources.limits.memory to 128Mi or more (default 1Gi)" (include "tao-kfp.quantity" .)) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* The TAO spec overrides: their size, and every key and value against the spec's fields, as the init Job's
`tao-kfp spec render` applies them (tao_kfp.spec.apply_overrides) once the claim and Secrets exist. */}}
{{- define "tao-kfp.validate.specs" -}}
{{- $errors := list }}
{{- $v := .Values }}
{{- /* Helm keeps values and the rendered manifest (which repeats specs.overrides in the specs ConfigMap) in one
release Secret, and Kubernetes caps a Secret at 1 MiB (k8s.io/api core/v1 MaxSecretSize; helm
pkg/storage/driver/secrets.go stores the gzipped release there). Measured by encoding the release of
`helm install --dry-run=client -o json` (Helm 4.1.4) as Helm does (base64 of gzip): 92 KB with no overrides,
620 KB with 262,000 bytes of incompressible overrides; the budget leaves room for the other values. */}}
{{- $overridesSize := len (toJson $v.specs.overrides) }}
{{- if gt $overridesSize 262144 }}
{{- $errors = append $errors (printf "specs.overrides is %d bytes as JSON (limit 262144): Helm stores the values and the rendered specs ConfigMap in one release Secret, capped at 1 MiB; override fewer fields, or edit the spec in the workspace (specs/%s)" $overridesSize $v.specs.fileName) }}
{{- else if and $v.specs.overrides (not (include "tao-kfp.workspaceSpec" .)) }}
{{- $errors = append $errors (printf "specs.overrides sets fields of the TF1 spec file, but tao.version %v's route reads no spec from the workspace (step 1 writes every Hydra spec of a run): give Hydra keys per run in the spec_overrides run parameter (upload.runParams.spec_overrides for the chart's runs), or set tao.version to \"3\" or \"5\" to keep the TF1 route" $v.tao.version) }}
{{- else if and $v.workspace.init.enabled $v.specs.overrides }}
{{- $fields := .Files.Get "files/specs/spec-fields.json" | fromJson }}
{{- if $fields.Experiment }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideProblems" (dict "fields" $fields "message" "Experiment" "prefix" "" "mapping" $v.specs.overrides) | fromJsonArray) }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Fails the render with every message of a list of errors (nothing when it is empty). */}}
{{- define "tao-kfp.failOn" -}}
{{- if . }}
{{- $message := printf "\n\ninvalid values for chart tao-kfp:\n  - %s\n" (join "\n  - " .) }}
{{- fail $message }}
{{- /* Reached only under `helm lint`, whose `fail` logs and returns "" (helm pkg/engine/engine.go initFunMap,
"Don't fail when linting": v3.18.0 line 224, v4.1.4 line 229). Including a template that does not exist is an error lint reports, with the
messages in it, so `helm lint --strict` fails whenever an install would. */}}
{{- include $message . }}
{{- end }}
{{- end }}

{{/* What credentials a URL carries, as words for a message ("" when none): a user name or password before the host,
or a token or signature in the query string (S3/GCS presigned URLs, Azure SAS, ?token=). The same patterns as
tao_kfp.value_rules.url_credentials. Never renders the secret itself. */}}
{{- define "tao-kfp.urlCredentials" -}}
{{- if regexMatch "^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@" . }}
{{- print "a user name or password (user:password@host)" }}
{{- else }}
{{- with regexFind "(?i)[?&](token|access_token|id_token|auth|password|passwd|pwd|secret|api_key|apikey|key|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)=" . }}
{{- printf "a credential in its query string (%s...)" (regexReplaceAll "^[?&]" . "") }}
{{- end }}
{{- end }}
{{- end }}

{{/* A cron expression as KFP's API server parses it: github.com/robfig/cron v1.2.0 cron.Parse (kubeflow/pipelines
2.15.0 backend/src/apiserver/server/api_converter.go:1974; 2.0.5 line 1919, 2.17.0 line 2088; the
ScheduledWorkflow controller parses again in backend/src/crd/controller/scheduledworkflow/util/cron_schedule.go:84).
Its default parser (robfig/cron v1.2.0 parser.go:174-176) takes 5 or 6 fields, seconds first; the upload prepends
"0" seconds to our 5-field form (minute hour day month weekday). Bounds and names: spec.go:17-46 (second and minute
0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-6 or sun-sat); getRange (parser.go:207-270)
refuses a number outside them, a range whose start is after its end and a step of 0, and "N/step" runs to the
maximum. Renders YAML {problems: [...], neverFires: bool}; the same rules as tao_kfp.value_rules.cron_problems.
neverFires: a day of month no chosen month has (0 0 31 2 *) with a * day of week, so robfig's Next finds no time
within five years (spec.go:70-76, dayMatches spec.go:149-158) and the recurring run never starts. */}}
{{- define "tao-kfp.cron" -}}
{{- $problems := list }}
{{- $fields := regexSplit "\\s+" (trim .) -1 }}
{{- if eq (len $fields) 5 }}
{{- $fields = prepend $fields "0" }}
{{- end }}
{{- $places := list (list "second" 0 59) (list "minute" 0 59) (list "hour" 0 23) (list "day of month" 1 31) (list "month" 1 12) (list "day of week" 0 6) }}
{{- $names := list (dict) (dict) (dict) (dict) (dict "jan" 1 "feb" 2 "mar" 3 "apr" 4 "may" 5 "jun" 6 "jul" 7 "aug" 8 "sep" 9 "oct" 10 "nov" 11 "dec" 12) (dict "sun" 0 "mon" 1 "tue" 2 "wed" 3 "thu" 4 "fri" 5 "sat" 6) }}
{{- $values := list (list) (list) (list) (list) (list) (list) }}
{{- $stars := list false false false false false false }}
{{- if ne (len $fields) 6 }}
{{- $problems = append $problems (printf "it has %d fields; give 5 (minute hour day month weekday, e.g. '0 0 * * *') or KFP's 6 (seconds first, e.g. '0 0 0 * * *')" (len $fields)) }}
{{- else }}
{{- range $i, $field := $fields }}
{{- $place := index $places $i }}
{{- $min := index $place 1 }}
{{- $max := index $place 2 }}
{{- range $part := splitList "," $field }}
{{- $rangeStep := splitList "/" $part }}
{{- $lowHigh := splitList "-" (first $rangeStep) }}
{{- $start := $min }}
{{- $end := $max }}
{{- $step := 1 }}
{{- $ok := true }}
{{- if has (first $lowHigh) (list "*" "?") }}
{{- $copy := list }}
{{- range $j, $star := $stars }}
{{- $copy = append $copy (or $star (eq $j $i)) }}
{{- end }}
{{- $stars = $copy }}
{{- else }}
{{- $bounds := list }}
{{- range $word := $lowHigh }}
{{- $lower := lower $word }}
{{- if hasKey (index $names $i) $lower }}
{{- $bounds = append $bounds (get (index $names $i) $lower) }}
{{- else if regexMatch "^[0-9]+$" $word }}
{{- $bounds = append $bounds (atoi $word) }}
{{- else }}
{{- $problems = append $problems (printf "%q in the %s field is neither a number nor a name of that field" $word (index $place 0)) }}
{{- $ok = false }}
{{- end }}
{{- end }}
{{- if $ok }}
{{- $start = first $bounds }}
{{- $end = last $bounds }}
{{- if and (eq (len $lowHigh) 1) (eq (len $rangeStep) 1) }}
{{- $end = $start }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $ok (eq (len $rangeStep) 2) }}
{{- if regexMatch "^[0-9]+$" (last $rangeStep) }}
{{- $step = atoi (last $rangeStep) }}
{{- else }}
{{- $problems = append $problems (printf "step %q of %q in the %s field is not a number" (last $rangeStep) $part (index $place 0)) }}
{{- $ok = false }}
{{- end }}
{{- end }}
{{- if $ok }}
{{- if or (lt (int $start) (int $min)) (gt (int $end) (int $max)) }}
{{- $problems = append $problems (printf "%q is outside the %s field's range %d-%d%s" $part (index $place 0) $min $max (ternary " (Sunday is 0 or sun)" "" (eq $i 5))) }}
{{- else if gt (int $start) (int $end) }}
{{- $problems = append $problems (printf "%q in the %s field starts after it ends" $part (index $place 0)) }}
{{- else if eq (int $step) 0 }}
{{- $problems = append $problems (printf "%q in the %s field has a step of 0" $part (index $place 0)) }}
{{- else }}
{{- $copy := list }}
{{- range $j, $set := $values }}
{{- $copy = append $copy (ternary (concat $set (untilStep (int $start) (int (add1 $end)) (int $step))) $set (eq $j $i)) }}
{{- end }}
{{- $values = $copy }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $neverFires := false }}
{{- if and (not $problems) (index $stars 5) (not (index $stars 3)) }}
{{- $days := dict "1" 31 "2" 29 "3" 31 "4" 30 "5" 31 "6" 30 "7" 31 "8" 31 "9" 30 "10" 31 "11" 30 "12" 31 }}
{{- $longest := 0 }}
{{- range $month := index $values 4 }}
{{- $longest = max $longest (get $days (toString $month)) }}
{{- end }}
{{- $firstDay := 99 }}
{{- range $day := index $values 3 }}
{{- $firstDay = min $firstDay $day }}
{{- end }}
{{- $neverFires = gt $firstDay $longest }}
{{- end }}
{{- toYaml (dict "problems" $problems "neverFires" $neverFires) }}
{{- end }}

{{/* Problems of spec overrides, as the init Job's `tao-kfp spec render` finds them (tao_kfp.spec.apply_overrides):
unknown fields (nested or dotted keys), values of the wrong type, two members of one oneof. Called with
(dict "fields" <files/specs/spec-fields.json> "message" <message name> "prefix" <dotted path> "mapping" <overrides>);
renders a JSON list. The field table is written from the spec's protobuf descriptor (tao_kfp.value_rules). */}}
{{- define "tao-kfp.specOverrideProblems" -}}
{{- $errors := list }}
{{- $fields := get .fields .message }}
{{- $chosen := dict }}
{{- range $key, $value := .mapping }}
{{- $full := ternary (printf "%s.%s" $.prefix $key) $key (ne $.prefix "") }}
{{- $name := regexReplaceAll "\\..*$" $key "" }}
{{- $rest := ternary (regexReplaceAll "^[^.]*\\." $key "") "" (contains "." $key) }}
{{- $field := get $fields $name }}
{{- $path := ternary (printf "%s.%s" $.prefix $name) $name (ne $.prefix "") }}
{{- if not $field }}
{{- $errors = append $errors (printf "specs.overrides: unknown key %q: %q is not a field of %s; valid fields: %s" $full $name (ternary "the spec" $.prefix (eq $.prefix "")) (keys $fields | sortAlpha | join ", ")) }}
{{- else }}
{{- with $field.oneof }}
{{- if and (hasKey $chosen .) (ne (get $chosen .) $name) }}
{{- $errors = append $errors (printf "specs.overrides set both %q and %q: only one of them can be used" (ternary (printf "%s.%s" $.prefix (get $chosen .)) (get $chosen .) (ne $.prefix "")) $path) }}
{{- end }}
{{- $_ := set $chosen . $name }}
{{- end }}
{{- if not $rest }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideValue" (dict "fields" $.fields "field" $field "path" $path "value" $value) | fromJsonArray) }}
{{- else if eq $field.kind "map" }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideScalar" (dict "field" $field.value "path" (printf "%s.%s" $path $rest) "value" $value) | fromJsonArray) }}
{{- else if and (eq $field.kind "message") (not $field.repeated) }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideProblems" (dict "fields" $.fields "message" $field.message "prefix" $path "mapping" (dict $rest $value)) | fromJsonArray) }}
{{- else }}
{{- $errors = append $errors (printf "specs.overrides: unknown key %q: %s is a single value, it has no field %q" $full $path $rest) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* Problems of one override value for a field (see tao-kfp.specOverrideProblems); null resets the field. */}}
{{- define "tao-kfp.specOverrideValue" -}}
{{- $errors := list }}
{{- $field := .field }}
{{- if kindIs "invalid" .value }}
{{- else if eq $field.kind "map" }}
{{- if kindIs "map" .value }}
{{- range $key, $item := .value }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideScalar" (dict "field" $field.value "path" (printf "%s.%s" $.path $key) "value" $item) | fromJsonArray) }}
{{- end }}
{{- else }}
{{- $errors = append $errors (printf "specs.overrides.%s is a map: give a mapping such as {b: 103.939}, got %s" .path (toJson .value)) }}
{{- end }}
{{- else if eq $field.kind "message" }}
{{- if kindIs "map" .value }}
{{- $errors = include "tao-kfp.specOverrideProblems" (dict "fields" .fields "message" $field.message "prefix" .path "mapping" .value) | fromJsonArray }}
{{- else }}
{{- $errors = append $errors (printf "specs.overrides.%s must be a mapping of field names to values, got %s" .path (toJson .value)) }}
{{- end }}
{{- else if $field.repeated }}
{{- if kindIs "slice" .value }}
{{- range $i, $item := .value }}
{{- $errors = concat $errors (include "tao-kfp.specOverrideScalar" (dict "field" $field "path" (printf "%s[%d]" $.path $i) "value" $item) | fromJsonArray) }}
{{- end }}
{{- else }}
{{- $errors = append $errors (printf "specs.overrides.%s is a repeated field: give a list, got %s" .path (toJson .value)) }}
{{- end }}
{{- else }}
{{- $errors = include "tao-kfp.specOverrideScalar" (dict "field" $field "path" .path "value" .value) | fromJsonArray }}
{{- end }}
{{- toJson $errors }}
{{- end }}

{{/* The problem (a JSON list of 0 or 1) of a scalar override value: bool, uint (whole, 0 to 2^32-1), float, string, enum. */}}
{{- define "tao-kfp.specOverrideScalar" -}}
{{- $kind := .field.kind }}
{{- $value := .value }}
{{- $words := "" }}
{{- if eq $kind "bool" }}
{{- $words = ternary "" "true or false" (kindIs "bool" $value) }}
{{- else if eq $kind "uint" }}
{{- $whole := or (kindIs "int" $value) (kindIs "int64" $value) (and (kindIs "float64" $value) (eq (float64 $value) (floor $value))) }}
{{- $words = ternary "" "a whole number >= 0" (and $whole (ge (float64 $value) 0.0) (lt (float64 $value) 4294967296.0)) }}
{{- else if eq $kind "float" }}
{{- $words = ternary "" "a number" (or (kindIs "int" $value) (kindIs "int64" $value) (kindIs "float64" $value)) }}
{{- else if eq $kind "string" }}
{{- $words = ternary "" "a string (quote it in YAML)" (kindIs "string" $value) }}
{{- else if eq $kind "enum" }}
{{- $words = ternary "" (printf "one of %s" (join ", " .field.values)) (and (kindIs "string" $value) (has $value .field.values)) }}
{{- end }}
{{- if $words }}
{{- list (printf "specs.overrides.%s must be %s, got %s" .path $words (toJson $value)) | toJson }}
{{- else }}
{{- list | toJson }}
{{- end }}
{{- end }}
