{{/* Labels on every object. */}}
{{- define "homelab-app.labels" -}}
app.kubernetes.io/name: {{ .Values.app.name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: homelab
{{- end }}

{{/* Labels the Service selects pods by; never change across builds. */}}
{{- define "homelab-app.selector" -}}
app.kubernetes.io/name: {{ .Values.app.name | quote }}
{{- end }}
