{{- define "fixture.podLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Values.fixture.neverReady }}
homelab.dev/fixture-never-ready: "true"
{{- end }}
{{- end -}}
