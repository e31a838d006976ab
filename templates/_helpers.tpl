{{/* Chart name, overridable with nameOverride. */}}
{{- define "tao-kfp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: fullnameOverride, else <release>-<chart> (or <release> when it already contains the chart name).
At most 48 characters: the longest suffix is "-workspace-init" (15), and a Job's name becomes its pods'
`job-name` label value, which Kubernetes caps at 63 (apimachinery util/validation/validation.go
LabelValueMaxLength). values.schema.json caps fullnameOverride/nameOverride at 48 so nothing is cut silently. */}}
{{- define "tao-kfp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods (NetworkPolicy); never the version. */}}
{{- define "tao-kfp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tao-kfp.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "<part>"). No version in selectors: nothing here selects. */}}
{{- define "tao-kfp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
{{ include "tao-kfp.selectorLabels" .ctx }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service | quote }}
app.kubernetes.io/part-of: tao-kfp
app.kubernetes.io/component: {{ .component | quote }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A metadata `annotations:` block (indented for metadata, include without nindent) merging commonAnnotations with (dict "ctx" $ "extra" {...}); the extra ones win. Empty when there are none. */}}
{{- define "tao-kfp.annotations" -}}
{{- $all := merge (dict) (.extra | default dict) .ctx.Values.commonAnnotations }}
{{- with $all }}
  annotations:
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{/* Hook annotations: nothing of a hook outlives its run (deleted on success and on failure, after Helm
printed the logs of its pods). Call with (dict "hook" "post-install" "weight" "5" "pod" true); "pod" adds the
output-log policy (Jobs and Pods only). */}}
{{- define "tao-kfp.hookAnnotations" -}}
{{- $hook := dict "helm.sh/hook" .hook "helm.sh/hook-delete-policy" "before-hook-creation,hook-succeeded,hook-failed" }}
{{- with .weight }}
{{- $_ := set $hook "helm.sh/hook-weight" . }}
{{- end }}
{{- if .pod }}
{{- $_ := set $hook "helm.sh/hook-output-log-policy" "hook-succeeded,hook-failed" }}
{{- end }}
{{- toYaml $hook }}
{{- end }}

{{/* An image reference "repository:tag" or "repository@digest"; call with (dict "ctx" $ "image" .Values.images.tools). */}}
{{- define "tao-kfp.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Name of the workspace claim: the existing one, or <fullname>-workspace. */}}
{{- define "tao-kfp.claimName" -}}
{{- if eq .Values.workspace.mode "existingClaim" }}
{{- .Values.workspace.existingClaim }}
{{- else }}
{{- printf "%s-workspace" (include "tao-kfp.fullname" .) }}
{{- end }}
{{- end }}

{{/* Name of the Secret with the NGC API key and the model key. */}}
{{- define "tao-kfp.secretName" -}}
{{- .Values.ngc.existingSecret | default (printf "%s-ngc" (include "tao-kfp.fullname" .)) }}
{{- end }}

{{/* Name of the nvcr.io pull Secret, or empty when there is none. */}}
{{- define "tao-kfp.pullSecretName" -}}
{{- if .Values.ngc.apiKey }}
{{- printf "%s-nvcr" (include "tao-kfp.fullname" .) }}
{{- else }}
{{- .Values.ngc.existingPullSecret }}
{{- end }}
{{- end }}

{{/* Name of the ServiceAccount of the upload Job and the KFP test (it gets the KFP token in multiUser mode). */}}
{{- define "tao-kfp.serviceAccountName" -}}
{{- printf "%s-upload" (include "tao-kfp.fullname" .) }}
{{- end }}

{{/* Pod metadata annotations of chart pods: the Istio opt-out (a sidecar never exits, so the Job would never finish). */}}
{{- define "tao-kfp.podAnnotations" -}}
{{- if not .Values.istio.injectSidecar }}
sidecar.istio.io/inject: "false"
{{- end }}
{{- end }}

{{/* Pod-level securityContext of chart pods: the workspace UID/GID, so files stay writable on NFS; Pod Security "restricted". */}}
{{- define "tao-kfp.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.workspace.uid }}
runAsGroup: {{ int .Values.workspace.gid }}
fsGroup: {{ int .Values.workspace.gid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level securityContext of chart containers (Pod Security "restricted", read-only root). */}}
{{- define "tao-kfp.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* imagePullSecrets of chart pods (the tools image never comes from nvcr.io, so only the extra ones). */}}
{{- define "tao-kfp.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* checkov skip annotations shared by every pod-running object, each with its reason. */}}
{{- define "tao-kfp.checkovPodSkips" -}}
checkov.io/skip1: CKV_K8S_15=pullPolicy follows images.pullPolicy (IfNotPresent) because tags are immutable release versions
{{- if not .Values.images.tools.digest }}
checkov.io/skip2: CKV_K8S_43=the tools image is pinned by the chart appVersion tag; set images.tools.digest to pin by digest
{{- end }}
{{- if lt (int .Values.workspace.uid) 10000 }}
checkov.io/skip3: CKV_K8S_40=runs as workspace.uid so workspace files stay writable by the pipeline steps; use a workspace.uid of 10000 or more if your storage allows
{{- end }}
{{- end }}

{{/* Arguments of `tao-kfp upload` that identify the KFP API and this release's pipeline version (shared by the upload Job and its helm test). */}}
{{- define "tao-kfp.uploadArgs" -}}
- upload
- {{ printf "--package=/etc/tao-kfp/pipeline/%s" (include "tao-kfp.pipelinePackage" . | base) | quote }}
- --config=/etc/tao-kfp/env/environment.yaml
- {{ printf "--host=%v" (.Values.kfp.host) | quote }}
- {{ printf "--pipeline-name=%v" (.Values.upload.pipelineName | default (include "tao-kfp.fullname" .)) | quote }}
- {{ printf "--version-prefix=%v" (.Chart.Version) | quote }}
- {{ printf "--deadline-seconds=%v" (int .Values.upload.deadlineSeconds) | quote }}
{{- with .Values.kfp.backendVersion }}
- {{ printf "--kfp-version=%v" . | quote }}
{{- end }}
{{- if eq .Values.kfp.mode "multiUser" }}
- {{ printf "--namespace=%v" (.Values.kfp.namespace) | quote }}
- --token-path=/var/run/secrets/kubeflow/pipelines/token
{{- end }}
{{- if or .Values.kfp.caBundle.configMap .Values.kfp.caBundle.secret }}
- {{ printf "--ca-bundle=/etc/tao-kfp/ca/%s" .Values.kfp.caBundle.key | quote }}
{{- end }}
{{- end }}

{{/* Volumes of the pods that talk to KFP: pipeline, environment config, HOME, the KFP token (multiUser) and the CA bundle. */}}
{{- define "tao-kfp.kfpVolumes" -}}
- name: pipeline
  configMap:
    name: {{ printf "%s-pipeline" (include "tao-kfp.fullname" .) | quote }}
- name: env
  configMap:
    name: {{ printf "%s-env" (include "tao-kfp.fullname" .) | quote }}
# HOME and /tmp on emptyDirs: the kfp client writes ~/.config/kfp/context.json; the root FS is read-only.
- name: home
  emptyDir:
    sizeLimit: 64Mi
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if eq .Values.kfp.mode "multiUser" }}
# Multi-user KFP authenticates a ServiceAccount token with this audience (never a kubeflow-userid header).
- name: kfp-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.kfp.tokenAudience | quote }}
          expirationSeconds: 3600
{{- end }}
{{- with .Values.kfp.caBundle.configMap }}
- name: ca-bundle
  configMap:
    name: {{ . | quote }}
{{- end }}
{{- with .Values.kfp.caBundle.secret }}
- name: ca-bundle
  secret:
    secretName: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Mounts matching tao-kfp.kfpVolumes. */}}
{{- define "tao-kfp.kfpVolumeMounts" -}}
- name: pipeline
  mountPath: /etc/tao-kfp/pipeline
  readOnly: true
- name: env
  mountPath: /etc/tao-kfp/env
  readOnly: true
- name: home
  mountPath: /home/tao-kfp
- name: tmp
  mountPath: /tmp
{{- if eq .Values.kfp.mode "multiUser" }}
- name: kfp-token
  mountPath: /var/run/secrets/kubeflow/pipelines
  readOnly: true
{{- end }}
{{- if or .Values.kfp.caBundle.configMap .Values.kfp.caBundle.secret }}
- name: ca-bundle
  mountPath: /etc/tao-kfp/ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Everything a chart container shares: image, pull policy, securityContext, resources, HOME. */}}
{{- define "tao-kfp.containerCommon" -}}
image: {{ include "tao-kfp.image" (dict "ctx" . "image" .Values.images.tools) | quote }}
imagePullPolicy: {{ .Values.images.pullPolicy | quote }}
securityContext:
  {{- include "tao-kfp.containerSecurityContext" . | nindent 2 }}
resources:
  {{- range $kind := list "requests" "limits" }}
  {{- with index $.Values.resources $kind }}
  {{ $kind }}:
    {{- range $name, $quantity := . }}
    {{ $name }}: {{ include "tao-kfp.quantity" $quantity | quote }}
    {{- end }}
  {{- end }}
  {{- end }}
env:
  - name: HOME
    value: /home/tao-kfp
  - name: PYTHONUNBUFFERED
    value: "1"
{{- end }}

{{/* checkov skips of test pods: the pod skips plus probes (a one-shot test pod serves nothing to probe). */}}
{{- define "tao-kfp.checkovTestPodSkips" -}}
{{ include "tao-kfp.checkovPodSkips" . }}
checkov.io/skip4: CKV_K8S_8=one-shot helm test pod, nothing to probe
checkov.io/skip5: CKV_K8S_9=one-shot helm test pod, nothing to probe
{{- end }}

{{/* A quantity or integer as text: values files give numbers as float64, which print as 1e+07; integral ones print as integers. */}}
{{- define "tao-kfp.quantity" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The value of a Kubernetes quantity (e.g. 1Gi, 500m, 2) as a float, to compare requests with limits. Assumes the schema's quantity pattern already holds. */}}
{{- define "tao-kfp.quantityValue" -}}
{{- $text := include "tao-kfp.quantity" . }}
{{- $number := regexFind "^[0-9.]+" $text }}
{{- $suffix := trimPrefix $number $text }}
{{- $scale := dict "" 1.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "P" 1000000000000000.0 "E" 1000000000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- mulf (float64 $number) (get $scale $suffix) }}
{{- end }}

{{/* The namespace where KFP runs this pipeline's pods (see tao-kfp.validate): kfp.pipelineNamespace, else the profile
namespace (multiUser), else the namespace an in-cluster kfp.host names: <service>.<namespace>[.svc...], or the
release namespace for a bare <service> (it resolves only there); empty when kfp.host is an external URL. */}}
{{- define "tao-kfp.pipelineNamespace" -}}
{{- $host := .Values.kfp.host }}
{{- if .Values.kfp.pipelineNamespace }}
{{- .Values.kfp.pipelineNamespace }}
{{- else if eq .Values.kfp.mode "multiUser" }}
{{- .Values.kfp.namespace }}
{{- else if regexMatch "^https?://[a-z0-9-]+(:[0-9]+)?(/.*)?$" $host }}
{{- .Release.Namespace }}
{{- else if regexMatch "^https?://[a-z0-9-]+\\.[a-z0-9-]+(\\.svc(\\.[^/:]*)?)?(:[0-9]+)?(/.*)?$" $host }}
{{- regexReplaceAll "^https?://[a-z0-9-]+\\.([a-z0-9-]+).*$" $host "${1}" }}
{{- end }}
{{- end }}

{{/* gpu.nodeSelector without null entries, as YAML: install drops them when merging values, lint keeps them. */}}
{{- define "tao-kfp.gpuNodeSelector" -}}
{{- $selector := dict }}
{{- range $key, $value := .Values.gpu.nodeSelector }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $selector $key $value }}
{{- end }}
{{- end }}
{{- toYaml $selector }}
{{- end }}

{{/* The environment config of the pipeline's steps (tao_kfp.environment.EnvironmentConfig, camelCase) as YAML: images,
workspace, Secret references (never values), GPU scheduling, TAO invocation, deadlines. The one place the GPU
steps' environment is derived: the env ConfigMap ships it and the pre-pull DaemonSet reads its images and nodes. */}}
{{- define "tao-kfp.environmentConfig" -}}
{{- $v := .Values }}
{{- $pullSecrets := list }}
{{- with include "tao-kfp.pullSecretName" . }}
{{- $pullSecrets = append $pullSecrets . }}
{{- end }}
{{- $pullSecrets = concat $pullSecrets $v.imagePullSecrets }}
{{- $secretName := include "tao-kfp.secretName" . }}
{{- /* Numbers from values files are float64 and would print as 1e+07: integers go out as integers. */}}
{{- $tolerations := list }}
{{- range $v.gpu.tolerations }}
{{- $t := omit . "tolerationSeconds" }}
{{- if hasKey . "tolerationSeconds" }}
{{- $t = set $t "tolerationSeconds" (int64 .tolerationSeconds) }}
{{- end }}
{{- $tolerations = append $tolerations $t }}
{{- end }}
{{- $env := dict
  "images" (dict
    "tao" (include "tao-kfp.image" (dict "ctx" . "image" $v.images.tao))
    "taoDeploy" (include "tao-kfp.image" (dict "ctx" . "image" $v.images.taoDeploy))
    "tools" (include "tao-kfp.image" (dict "ctx" . "image" $v.images.tools))
    "pullPolicy" $v.images.pullPolicy)
  "workspace" (dict
    "claimName" (include "tao-kfp.claimName" .)
    "mountPath" $v.workspace.mountPath
    "runAsUser" (int64 $v.workspace.uid)
    "runAsGroup" (int64 $v.workspace.gid))
  "secrets" (dict
    "ngcApiKey" (dict "name" $secretName "key" $v.ngc.secretKeys.apiKey)
    "modelKey" (dict "name" $secretName "key" $v.ngc.secretKeys.modelKey)
    "imagePullSecrets" $pullSecrets)
  "gpu" (dict
    "resource" $v.gpu.resource
    "count" (int $v.gpu.count)
    "nodeSelector" (include "tao-kfp.gpuNodeSelector" . | fromYaml)
    "tolerations" $tolerations
    "shmSize" $v.gpu.shmSize)
  "tao" (dict
    "entrypoint" $v.tao.entrypoint
    "converter" $v.tao.converter
    "deployEntrypoint" $v.tao.deployEntrypoint
    "version" ($v.tao.version | toString))
  "timeouts" (dict "cpuStepSeconds" (int64 $v.timeouts.cpuStepSeconds) "gpuStepSeconds" (int64 $v.timeouts.gpuStepSeconds))
}}
{{- toYaml $env }}
{{- end }}

{{/* A Job that runs `tao-kfp upload ...` against the KFP API (the upload Job and the recurring-run clean-up Job):
hook annotations, labels, the upload ServiceAccount, the KFP volumes and the arguments shared with the helm test.
Call with (dict "ctx" $ "suffix" "upload" "component" "pipeline-upload" "hook" <hook annotations dict>
"backoffLimit" N "activeDeadlineSeconds" N "args" <list of extra arguments>). */}}
{{- define "tao-kfp.kfpJob" -}}
{{- $ctx := .ctx }}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-%s" (include "tao-kfp.fullname" $ctx) .suffix | quote }}
  namespace: {{ $ctx.Release.Namespace | quote }}
  labels:
    {{- include "tao-kfp.labels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
  {{- include "tao-kfp.annotations" (dict "ctx" $ctx "extra" (merge .hook (include "tao-kfp.checkovPodSkips" $ctx | fromYaml))) }}
spec:
  backoffLimit: {{ .backoffLimit }}
  activeDeadlineSeconds: {{ .activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "tao-kfp.labels" (dict "ctx" $ctx "component" .component) | nindent 8 }}
      {{- with include "tao-kfp.podAnnotations" $ctx }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "tao-kfp.serviceAccountName" $ctx | quote }}
      # The API token is never needed; in multiUser mode the KFP token comes from a projected volume.
      automountServiceAccountToken: false
      {{- include "tao-kfp.imagePullSecrets" $ctx | nindent 6 }}
      securityContext:
        {{- include "tao-kfp.podSecurityContext" $ctx | nindent 8 }}
      containers:
        - name: {{ .suffix }}
          {{- include "tao-kfp.containerCommon" $ctx | nindent 10 }}
          command: ["tao-kfp"]
          args:
            {{- include "tao-kfp.uploadArgs" $ctx | nindent 12 }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
          volumeMounts:
            {{- include "tao-kfp.kfpVolumeMounts" $ctx | nindent 12 }}
      volumes:
        {{- include "tao-kfp.kfpVolumes" $ctx | nindent 8 }}
{{- end }}

{{/* The compiled pipeline of tao.version's route, relative to the chart (tao_kfp.routes: Route.package;
tests/chart/test_chart_routes.py holds this map to the registry). */}}
{{- define "tao-kfp.pipelinePackage" -}}
{{- $packages := dict "3" "files/pipelines/tao-classification.yaml" "5" "files/pipelines/tao-classification.yaml" "6" "files/pipelines/tao-classification-pyt.yaml" }}
{{- get $packages (.Values.tao.version | toString) }}
{{- end }}

{{/* The spec the workspace-init Job renders for tao.version's route, relative to the chart; empty when the
route reads none from the workspace (its step 1 writes every spec). tao_kfp.routes: Route.workspace_spec;
tests/chart/test_chart_routes.py holds this map to the registry. */}}
{{- define "tao-kfp.workspaceSpec" -}}
{{- $specs := dict "3" "files/specs/classification_spec.cfg" "5" "files/specs/classification_spec.cfg" "6" "" }}
{{- get $specs (.Values.tao.version | toString) }}
{{- end }}
