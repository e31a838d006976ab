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
{{- if and $v.tests.gpuNodes.enabled (not $v.gpu.nodeSelector) }}
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

{{- if $errors }}
{{- fail (printf "\n\ninvalid values for chart tao-kfp:\n  - %s\n" (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
