{{/* The MeshStor image reference. */}}
{{- define "meshstor.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels every object carries; `component` names the part. */}}
{{- define "meshstor.labels" -}}
app.kubernetes.io/name: meshstor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component's pods. */}}
{{- define "meshstor.selector" -}}
app.kubernetes.io/name: meshstor
app.kubernetes.io/component: {{ . }}
{{- end -}}

{{/* The extender's in-cluster URL, as kube-scheduler calls it. */}}
{{- define "meshstor.extenderURL" -}}
https://meshstor-extender.{{ .Release.Namespace }}.svc:{{ .Values.extender.port }}
{{- end -}}

{{/* The CSI sidecars' leader-election timing flags (csi-lib-utils' standard flags); refuses an order that cannot work. */}}
{{- define "meshstor.sidecarLeaderElection" -}}
{{- $e := .Values.controller.sidecarLeaderElection -}}
{{- $lease := int $e.leaseDurationSeconds -}}
{{- $renew := int $e.renewDeadlineSeconds -}}
{{- $retry := int $e.retryPeriodSeconds -}}
{{- if not (and (gt $lease $renew) (gt $renew $retry) (gt $retry 0)) -}}
{{- fail (printf "controller.sidecarLeaderElection needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds > 0 (got %d, %d, %d)" $lease $renew $retry) -}}
{{- end -}}
- --leader-election-lease-duration={{ $lease }}s
- --leader-election-renew-deadline={{ $renew }}s
- --leader-election-retry-period={{ $retry }}s
{{- end -}}
