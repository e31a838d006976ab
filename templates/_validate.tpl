{{/*
All checks of value combinations, in one place. Types, enums and patterns are in
values.schema.json; this covers what a schema cannot say well. Every message names the keys
and the fix. Errors are collected so one `helm install` shows all of them.
Included once, from templates/validate.yaml.
*/}}
{{- define "tao-kfp.validate" -}}
{{- $errors := list }}
{{- $v := .Values }}

{{- /* Files the chart ships (written by `make compile` and the spec module). */}}
{{- if and $v.upload.enabled (not (.Files.Get "files/pipelines/tao-classification.yaml")) }}
{{- $errors = append $errors "files/pipelines/tao-classification.yaml is missing from the chart: run `make compile` in the chart source before `helm install`/`helm package` (or set upload.enabled=false)" }}
{{- end }}
{{- if and $v.workspace.init.enabled (not (.Files.Get "files/specs/classification_spec.cfg")) }}
{{- $errors = append $errors "files/specs/classification_spec.cfg is missing from the chart: the workspace init Job renders the TAO spec from it; restore it from the chart source (or set workspace.init.enabled=false)" }}
{{- end }}

{{- /* Workspace storage: exactly one mode's settings. */}}
{{- $w := $v.workspace }}
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
{{- if and $w.init.datasetSha256 (not $w.init.datasetUrl) }}
{{- $errors = append $errors "workspace.init.datasetSha256 is set without workspace.init.datasetUrl: set the archive URL too, or clear the checksum" }}
{{- end }}
{{- if and $v.specs.force (not $w.init.enabled) }}
{{- $errors = append $errors "specs.force=true has no effect with workspace.init.enabled=false: enable the init Job, or drop specs.force" }}
{{- end }}

{{- /* NGC credentials: either a key (the chart creates the Secrets) or existing Secrets. */}}
{{- $n := $v.ngc }}
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
{{- if eq $n.secretKeys.apiKey $n.secretKeys.modelKey }}
{{- $errors = append $errors "ngc.secretKeys.apiKey and ngc.secretKeys.modelKey are the same key: the Secret needs two distinct keys" }}
{{- end }}

{{- /* GPU scheduling of the pipeline's GPU steps. */}}
{{- if lt (int $v.gpu.count) 1 }}
{{- $errors = append $errors (printf "gpu.count is %v: the GPU steps need at least one GPU; set gpu.count=1 (use gpu.resource for a MIG slice)" $v.gpu.count) }}
{{- end }}
{{- /* null entries count as absent: install drops them when merging values, lint keeps them. */}}
{{- $selector := dict }}
{{- range $key, $value := $v.gpu.nodeSelector }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $selector $key $value }}
{{- end }}
{{- end }}
{{- if and $v.tests.gpuNodes.enabled (not $selector) }}
{{- $errors = append $errors "tests.gpuNodes.enabled=true with an empty gpu.nodeSelector: set a selector (e.g. nvidia.com/gpu.present: \"true\") or disable the test" }}
{{- end }}

{{- /* TAO version and command agree (same rule as tao_kfp.environment.version_problems). */}}
{{- $taoWords := splitList " " (regexReplaceAll "[/]" $v.tao.entrypoint " ") }}
{{- $taoVersion := $v.tao.version | toString }}
{{- if and (eq $taoVersion "3") (has "classification_tf1" $taoWords) }}
{{- $errors = append $errors (printf "tao.entrypoint %q is TAO 5's command but tao.version is 3: set tao.version=5, or tao.entrypoint=classification" $v.tao.entrypoint) }}
{{- end }}
{{- if and (eq $taoVersion "5") (has "classification" $taoWords) }}
{{- $errors = append $errors (printf "tao.entrypoint %q is TAO 3's command but tao.version is 5: set tao.version=3, or tao.entrypoint=classification_tf1 (5.0 writes .hdf5 checkpoints; a mismatch crashes prune)" $v.tao.entrypoint) }}
{{- end }}

{{- /* KFP access. */}}
{{- $k := $v.kfp }}
{{- if and (eq $k.mode "multiUser") (not $k.namespace) }}
{{- $errors = append $errors "kfp.namespace is empty but kfp.mode is multiUser: set it to your Kubeflow profile namespace (kubectl get profiles)" }}
{{- end }}
{{- if and (eq $k.mode "standalone") $k.namespace }}
{{- $errors = append $errors "kfp.namespace is set but kfp.mode is standalone: standalone KFP has no profile namespaces; set kfp.mode=multiUser or clear kfp.namespace" }}
{{- end }}
{{- if and $k.caBundle.configMap $k.caBundle.secret }}
{{- $errors = append $errors "kfp.caBundle.configMap and kfp.caBundle.secret are both set: name one source for the CA bundle" }}
{{- end }}
{{- if and (or $k.caBundle.configMap $k.caBundle.secret) (not (hasPrefix "https://" $k.host)) }}
{{- $errors = append $errors (printf "kfp.caBundle is set but kfp.host (%s) is not https: use an https:// host or drop the CA bundle" $k.host) }}
{{- end }}

{{- /* Upload options. */}}
{{- $u := $v.upload }}
{{- if and $u.runFirst (not $u.experiment) }}
{{- $errors = append $errors "upload.runFirst=true needs upload.experiment: set an experiment name for the run" }}
{{- end }}
{{- if and $u.recurringCron (not $u.experiment) }}
{{- $errors = append $errors "upload.recurringCron is set without upload.experiment: set an experiment name for the recurring run" }}
{{- end }}
{{- if and $u.runParams (not (or $u.runFirst $u.recurringCron)) }}
{{- $errors = append $errors "upload.runParams is set but no run is started: set upload.runFirst=true or upload.recurringCron" }}
{{- end }}
{{- if and $v.tests.kfp.enabled (not $u.enabled) }}
{{- $errors = append $errors "tests.kfp.enabled=true but upload.enabled=false: the test checks the uploaded pipeline version; disable the test or enable the upload" }}
{{- end }}
{{- if and $v.tests.workspace.enabled (not $w.init.enabled) }}
{{- $errors = append $errors "tests.workspace.enabled=true but workspace.init.enabled=false: the test expects the layout the init Job writes; disable the test or enable the init Job" }}
{{- end }}

{{- /* Where the pipeline's pods run. A pod mounts claims and reads Secrets of its own namespace only, so the
workspace claim, the NGC Secrets and everything that mounts the claim must be in the namespace where KFP
runs the pipeline's pods: KFP's own namespace for standalone KFP, the profile namespace for multi-user KFP
(/work/shared/reference/kfp-backend.md "Where pipeline pods run"). */}}
{{- $podNamespace := include "tao-kfp.pipelineNamespace" . }}
{{- if and (eq $k.mode "multiUser") (not $podNamespace) }}
{{- /* An empty kfp.namespace: reported above with its own fix. */}}
{{- else if not $podNamespace }}
{{- $errors = append $errors (printf "kfp.pipelineNamespace is empty and kfp.host (%s) does not name KFP's namespace (<service>.<namespace>.svc...): standalone KFP runs every pipeline pod in its own namespace (usually kubeflow), where the workspace claim and Secrets must be; set kfp.pipelineNamespace to it and install there with -n" $k.host) }}
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

{{- /* The upload's ServiceAccount gets kfp.clusterRole in the profile namespace: never a cluster-wide admin role. */}}
{{- if and (eq $k.mode "multiUser") (or (has $k.clusterRole (list "cluster-admin" "admin" "edit" "kubeflow-admin")) (hasPrefix "system:" $k.clusterRole)) }}
{{- $errors = append $errors (printf "kfp.clusterRole=%s would give the upload Job's ServiceAccount broad rights in %s (secrets, pods, RBAC): bind kubeflow-pipelines-edit (KFP's own role for pipelines, runs and experiments) or a role limited to pipelines.kubeflow.org" $k.clusterRole $k.namespace) }}
{{- end }}

{{- /* Generated names: a Job's name is its pods' job-name label value, at most 63 characters
(k8s.io/apimachinery/pkg/util/validation/validation.go, LabelValueMaxLength). */}}
{{- range $suffix := list "upload" "workspace-init" }}
{{- $job := printf "%s-%s" (include "tao-kfp.fullname" $) $suffix }}
{{- if gt (len $job) 63 }}
{{- $errors = append $errors (printf "the Job name %s has %d characters; Kubernetes puts it in the job-name label, at most 63: shorten fullnameOverride or the release name" $job (len $job)) }}
{{- end }}
{{- end }}

{{- /* Labels and annotations the chart controls: Helm and the chart's selectors depend on them. */}}
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
{{- range $key, $_ := $w.claimAnnotations }}
{{- if or (hasPrefix "helm.sh/" $key) (hasPrefix "meta.helm.sh/" $key) }}
{{- $errors = append $errors (printf "workspace.claimAnnotations.%s is a Helm control annotation: remove it; use workspace.keep for helm.sh/resource-policy" $key) }}
{{- end }}
{{- end }}

{{- /* Kubernetes caps an object's annotations at 256 KiB in total, keys plus values
(k8s.io/apimachinery/pkg/api/validation/objectmeta.go, TotalAnnotationSizeLimitB); the chart adds its own. */}}
{{- $annotationBytes := 0 }}
{{- range $key, $value := merge (dict) $v.commonAnnotations $w.claimAnnotations }}
{{- $annotationBytes = add $annotationBytes (len $key) (len (toString $value)) }}
{{- end }}
{{- if gt $annotationBytes 204800 }}
{{- $errors = append $errors (printf "commonAnnotations and workspace.claimAnnotations hold %d bytes (limit 204800): Kubernetes refuses objects whose annotations exceed 256 KiB, and the chart adds its own; move large data out of annotations" $annotationBytes) }}
{{- end }}

{{- /* Paths: the workspace mount must not hide what the pods need. The schema already refuses ".." and relative paths. */}}
{{- $mount := $w.mountPath }}
{{- range $reserved := list "/tmp" "/dev/shm" "/dev" "/proc" "/sys" "/etc" "/home/tao-kfp" "/etc/tao-kfp" "/var/run/secrets" "/usr" "/bin" "/lib" }}
{{- if or (eq $mount $reserved) (hasPrefix (printf "%s/" $reserved) $mount) (hasPrefix (printf "%s/" $mount) $reserved) }}
{{- $errors = append $errors (printf "workspace.mountPath=%s overlaps %s, which the chart's pods or the pipeline steps need (scratch space, shared memory, config, system files): use a path of its own such as /workspace" $mount $reserved) }}
{{- break }}
{{- end }}
{{- end }}

{{- /* Resources of chart containers: requests not above limits (the API server refuses it:
k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateResourceRequirements). */}}
{{- $requests := $v.resources.requests | default dict }}
{{- range $name, $limit := $v.resources.limits }}
{{- if hasKey $requests $name }}
{{- if gt (include "tao-kfp.quantityValue" (get $requests $name) | float64) (include "tao-kfp.quantityValue" $limit | float64) }}
{{- $errors = append $errors (printf "resources.requests.%s (%s) is above resources.limits.%s (%s): Kubernetes refuses a request above its limit; lower the request or raise the limit" $name (include "tao-kfp.quantity" (get $requests $name)) $name (include "tao-kfp.quantity" $limit)) }}
{{- end }}
{{- end }}
{{- end }}

{{- /* Python with the kfp client needs memory: `python -c "import kfp.client"` peaks at 83 MB RSS (measured with
/usr/bin/time -v in this repository's .venv), so a smaller limit OOM-kills the upload Job before it does anything. */}}
{{- with $v.resources.limits.memory }}
{{- if lt (include "tao-kfp.quantityValue" . | float64) 134217728.0 }}
{{- $errors = append $errors (printf "resources.limits.memory=%s is below 128Mi: the chart's Python containers (kfp client) need about 100 MB and would be OOM-killed; set resources.limits.memory to 128Mi or more (default 1Gi)" (include "tao-kfp.quantity" .)) }}
{{- end }}
{{- end }}

{{- /* The workspace is written by the init Job and every pipeline step. */}}
{{- if and (eq $w.mode "existingClaim" | not) (not (or (has "ReadWriteMany" $w.accessModes) (has "ReadWriteOnce" $w.accessModes) (has "ReadWriteOncePod" $w.accessModes))) }}
{{- $errors = append $errors "workspace.accessModes has no writable mode: the init Job and every pipeline step write the workspace; use ReadWriteMany (steps on several nodes) or ReadWriteOnce (one node)" }}
{{- end }}

{{- /* GPU steps: rules KFP does not check but Kubernetes applies when it creates the step's pod, hours later
(k8s.io/kubernetes pkg/apis/core/validation/validation.go ValidateTolerations). The same rules are in
pipeline_src/tao_kfp/environment.py for `tao-kfp render`; tests/chart/test_rule_parity.py runs the same cases through both. */}}
{{- range $i, $t := $v.gpu.tolerations }}
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
{{- if contains "kubernetes.io/" $v.gpu.resource }}
{{- $errors = append $errors (printf "gpu.resource=%s is in the kubernetes.io domain, reserved for native resources (k8s.io/kubernetes pkg/apis/core/helper IsExtendedResourceName): extended resources such as nvidia.com/gpu live in a vendor domain" $v.gpu.resource) }}
{{- end }}
{{- if and (hasPrefix "nvidia.com/" $v.gpu.resource) (not (regexMatch "^nvidia\\.com/(gpu|gpu\\.shared|mig-([1-7]c\\.)?[1-8]g\\.[0-9]+gb(\\+me)?)$" $v.gpu.resource)) }}
{{- $errors = append $errors (printf "gpu.resource=%s is not a resource NVIDIA's device plugin advertises: use nvidia.com/gpu (whole GPUs) or a MIG slice such as nvidia.com/mig-1g.10gb (kubectl describe node shows the names)" $v.gpu.resource) }}
{{- end }}

{{- /* Size of the release: Helm keeps values and the rendered manifest (which repeats specs.overrides in the
specs ConfigMap) in one release Secret, and Kubernetes caps a Secret at 1 MiB (k8s.io/api core/v1
MaxSecretSize; helm pkg/storage/driver/secrets.go stores the gzipped release there). Measured by encoding the
release of `helm install --dry-run=client -o json` (Helm 4.1.4) as Helm does (base64 of gzip): 92 KB with no
overrides, 620 KB with 262,000 bytes of incompressible overrides; the budget leaves room for the other values. */}}
{{- $overridesSize := len (toJson $v.specs.overrides) }}
{{- if gt $overridesSize 262144 }}
{{- $errors = append $errors (printf "specs.overrides is %d bytes as JSON (limit 262144): Helm stores the values and the rendered specs ConfigMap in one release Secret, capped at 1 MiB; override fewer fields, or edit the spec in the workspace (specs/%s)" $overridesSize $v.specs.fileName) }}
{{- end }}

{{- include "tao-kfp.failOn" $errors }}
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
