{{- define "tp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tp.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tp.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tp.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret holding DATABASE_URL and REDIS_URL. */}}
{{- define "tp.secretName" -}}
{{ include "tp.fullname" . }}-urls
{{- end -}}

{{- define "tp.databaseSecret" -}}
{{- if and (not .Values.postgresql.enabled) .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else -}}
{{ include "tp.secretName" . }}
{{- end -}}
{{- end -}}

{{- define "tp.redisSecret" -}}
{{- if and (not .Values.redisServer.enabled) .Values.redis.existingSecret -}}
{{ .Values.redis.existingSecret }}
{{- else -}}
{{ include "tp.secretName" . }}
{{- end -}}
{{- end -}}

{{/* Pod-level settings every workload shares. */}}
{{- define "tp.podSpec" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* Environment: the ConfigMap, then the URLs from their Secrets. */}}
{{- define "tp.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tp.fullname" .root }}
env:
  {{- if .database }}
  - name: TELEMETRY_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "tp.databaseSecret" .root }}
        key: DATABASE_URL
  {{- end }}
  {{- if .root.Values.web.existingSecret }}
  - name: TELEMETRY_WEB_CONFIG_FILE
    value: /etc/telemetry/web/{{ .root.Values.web.file }}
  {{- end }}
  {{- if .redis }}
  - name: TELEMETRY_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "tp.redisSecret" .root }}
        key: REDIS_URL
  {{- end }}
{{- end -}}

{{/* Probes on /health and /ready, served by every mode on :8080. */}}
{{- define "tp.probes" -}}
ports:
  - name: http
    containerPort: 8080
    protocol: TCP
{{- $scheme := ternary "HTTPS" "HTTP" .Values.web.tls }}
livenessProbe:
  httpGet: {path: /health, port: http, scheme: {{ $scheme }}}
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /ready, port: http, scheme: {{ $scheme }}}
  periodSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet: {path: /health, port: http, scheme: {{ $scheme }}}
  periodSeconds: 2
  failureThreshold: 30
{{- end -}}

{{/* The web config Secret, mounted where TELEMETRY_WEB_CONFIG_FILE points. */}}
{{- define "tp.webMount" -}}
{{- if .Values.web.existingSecret }}
- {name: web, mountPath: /etc/telemetry/web, readOnly: true}
{{- end }}
{{- end -}}

{{- define "tp.webVolume" -}}
{{- if .Values.web.existingSecret }}
- name: web
  secret: {secretName: {{ .Values.web.existingSecret }}}
{{- end }}
{{- end -}}
