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
