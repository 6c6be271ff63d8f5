{{- define "streamer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "streamer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "streamer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "streamer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "streamer.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "streamer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "streamer.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "streamer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "streamer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "streamer.secretName" -}}
{{- default (include "streamer.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* "true" in the embedded mode: the SQLite log, on this pod's volume. */}}
{{- define "streamer.embedded" -}}
{{- if eq (toString (default "sqlite" .Values.settings.STREAMER_LOG_BACKEND)) "sqlite" }}true{{ end }}
{{- end }}

{{/* The NATS server of the JetStream mode: STREAMER_NATS_URL, else the one this chart
installs (the client Service of the NATS chart, named by that chart's own rules). */}}
{{- define "streamer.natsUrl" -}}
{{- if .Values.settings.STREAMER_NATS_URL }}
{{- .Values.settings.STREAMER_NATS_URL }}
{{- else if .Values.nats.enabled }}
{{- $nats := .Values.nats }}
{{- $name := default "nats" $nats.nameOverride }}
{{- $fullname := printf "%s-%s" .Release.Name $name }}
{{- if $nats.fullnameOverride }}
{{- $fullname = $nats.fullnameOverride }}
{{- else if contains $name .Release.Name }}
{{- $fullname = .Release.Name }}
{{- end }}
{{- $service := default ($fullname | trunc 63 | trimSuffix "-") (dig "service" "name" "" $nats) }}
{{- $namespace := default .Release.Namespace $nats.namespaceOverride }}
{{- printf "nats://%s.%s.svc:%v" $service $namespace (dig "config" "nats" "port" 4222 $nats) }}
{{- else }}
{{- fail "the JetStream mode needs a NATS server: set settings.STREAMER_NATS_URL, or nats.enabled=true to install one with this chart" }}
{{- end }}
{{- end }}

{{/* Seconds Kubernetes waits between SIGTERM and SIGKILL: the preStop pause, then up to one
shutdown timeout for open requests and one for in-flight sends, then a margin. */}}
{{- define "streamer.terminationGracePeriodSeconds" -}}
{{- $timeout := ceil (float64 (default 10 .Values.settings.STREAMER_SHUTDOWN_TIMEOUT_SECS)) | int }}
{{- add (int .Values.shutdown.preStopSleepSecs) $timeout (int .Values.shutdown.marginSecs) }}
{{- end }}

{{/* Refuse what cannot work, at render time. */}}
{{- define "streamer.validate" -}}
{{- if include "streamer.embedded" . }}
{{- if ne (int .Values.replicaCount) 1 }}
{{- fail "the embedded mode (STREAMER_LOG_BACKEND=sqlite) runs exactly one replica: set replicaCount=1, or use the JetStream mode (values-jetstream.yaml)" }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- fail "the embedded mode (STREAMER_LOG_BACKEND=sqlite) cannot autoscale: set autoscaling.enabled=false, or use the JetStream mode (values-jetstream.yaml)" }}
{{- end }}
{{- end }}
{{- end }}
