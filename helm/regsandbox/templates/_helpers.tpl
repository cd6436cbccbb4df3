{{/* Names: every object is <release>-regsandbox-<component>, cut to 63 characters. */}}
{{- define "regsandbox.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "regsandbox.name" -}}
{{- printf "%s-%s" (include "regsandbox.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "regsandbox.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "regsandbox.labels" -}}
{{ include "regsandbox.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: regsandbox
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "regsandbox.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{/* Pod-level security: non-root, RuntimeDefault seccomp, volumes group-owned by the image's user. */}}
{{- define "regsandbox.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The restricted profile for every container: nothing to escalate, nothing to write but volumes. */}}
{{- define "regsandbox.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "regsandbox.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Environment every Python server shares: no bytecode on a read-only root, unbuffered logs. */}}
{{- define "regsandbox.pythonEnv" -}}
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: HOME
  value: /tmp
{{- end -}}

{{- define "regsandbox.dbSecret" -}}
{{- if .Values.postgresql.bundled -}}
{{ include "regsandbox.name" (dict "root" . "component" "db") }}
{{- else -}}
{{ required "externalDatabase.existingSecret is required when postgresql.bundled is false" .Values.externalDatabase.existingSecret }}
{{- end -}}
{{- end -}}

{{/*
The SQLAlchemy URL of one database (platform, prefect or mlflow) in the variable named .env. Bundled: built
from the generated password ($(POSTGRES_PASSWORD) is expanded by the kubelet); external: read
whole from the operator's Secret.
*/}}
{{- define "regsandbox.databaseEnv" -}}
{{- $root := .root -}}
{{- if $root.Values.postgresql.bundled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "regsandbox.dbSecret" $root }}
      key: password
- name: {{ .env }}
  value: {{ printf "%s://%s:$(POSTGRES_PASSWORD)@%s:%d/%s" .driver $root.Values.postgresql.user (include "regsandbox.name" (dict "root" $root "component" "postgresql")) (int $root.Values.postgresql.port) .database | quote }}
{{- else }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "regsandbox.dbSecret" $root }}
      key: {{ .database }}
{{- end }}
{{- end -}}

{{- define "regsandbox.platformUrl" -}}
{{- if .Values.platform.url -}}
{{ .Values.platform.url }}
{{- else if .Values.ingress.enabled -}}
{{ printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) .Values.ingress.host }}
{{- else -}}
{{ printf "http://%s.%s.svc:%d" (include "regsandbox.name" (dict "root" . "component" "platform")) .Release.Namespace (int .Values.platform.port) }}
{{- end -}}
{{- end -}}

{{- define "regsandbox.prefectApiUrl" -}}
{{ printf "http://%s:%d/api" (include "regsandbox.name" (dict "root" . "component" "prefect")) (int .Values.prefect.port) }}
{{- end -}}

{{- define "regsandbox.mlflowUrl" -}}
{{ printf "http://%s:%d" (include "regsandbox.name" (dict "root" . "component" "mlflow")) (int .Values.mlflow.port) }}
{{- end -}}

{{- define "regsandbox.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}

{{/* A data volume: the component's claim when persistence is on, else an emptyDir. */}}
{{- define "regsandbox.dataVolume" -}}
- name: {{ .volume }}
  {{- if .root.Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "regsandbox.name" (dict "root" .root "component" .component) }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end -}}

{{/* What the API, the runner and the bootstrap share: where the home, the servers and the database are. */}}
{{- define "regsandbox.platformEnv" -}}
{{ include "regsandbox.pythonEnv" . }}
- name: REGSANDBOX_HOME
  value: /data
- name: REGSANDBOX_PLATFORM_URL
  value: {{ include "regsandbox.platformUrl" . | quote }}
- name: PREFECT_API_URL
  value: {{ include "regsandbox.prefectApiUrl" . | quote }}
- name: MLFLOW_TRACKING_URI
  value: {{ include "regsandbox.mlflowUrl" . | quote }}
- name: REGSANDBOX_ENDPOINT_RATE_PER_S
  value: {{ .Values.platform.endpointRatePerSecond | quote }}
- name: REGSANDBOX_ENDPOINT_BURST
  value: {{ .Values.platform.endpointBurst | quote }}
{{- include "regsandbox.databaseEnv" (dict "root" . "env" "REGSANDBOX_DATABASE_URL" "driver" "postgresql+psycopg" "database" "platform") }}
{{- range $name, $value := .Values.platform.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "regsandbox.prefectUiApiUrl" -}}
{{- if .Values.prefect.uiApiUrl -}}
{{ .Values.prefect.uiApiUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.prefectHost -}}
{{ printf "%s://%s/api" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) .Values.ingress.prefectHost }}
{{- else -}}
{{ printf "http://localhost:%d/api" (int .Values.prefect.port) }}
{{- end -}}
{{- end -}}
