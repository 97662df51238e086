{{/*
Names, labels and small lookups shared by every template. A "component" is one of `all`
(monolithic mode) or a target of distributed mode: config, ingest, query, search, alert.
*/}}

{{- define "pharos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pharos.fullname" -}}
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

{{- define "pharos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of a component's workload and gRPC Service: the full name, plus `-<component>` in
distributed mode. Call with (dict "root" $ "component" "ingest"). */}}
{{- define "pharos.componentName" -}}
{{- if eq .component "all" }}
{{- include "pharos.fullname" .root }}
{{- else }}
{{- printf "%s-%s" (include "pharos.fullname" .root | trunc 55 | trimSuffix "-") .component }}
{{- end }}
{{- end }}

{{/* Selector labels: name, instance and component only (selectors are immutable). */}}
{{- define "pharos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pharos.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every object's labels. Call with (dict "root" $ "component" "ingest"). */}}
{{- define "pharos.labels" -}}
helm.sh/chart: {{ include "pharos.chart" .root }}
{{ include "pharos.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pharos
{{- end }}

{{- define "pharos.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "pharos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pharos.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when PostgreSQL is configured (a URL or an existing Secret), else empty. */}}
{{- define "pharos.hasDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret holding the database URL, and its key. */}}
{{- define "pharos.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "pharos.fullname" .) }}
{{- end }}
{{- end }}

{{- define "pharos.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{/* The grpc.health.v1 service name a component's probes ask about. */}}
{{- define "pharos.healthService" -}}
{{- $names := dict "all" "" "config" "pharos.config.v1.ConfigService" "ingest" "pharos.ingest.v1.IngestService" "query" "pharos.query.v1.QueryService" "search" "pharos.search.v1.SearchService" "alert" "pharos.alert.v1.AlertService" }}
{{- get $names . }}
{{- end }}

{{/* The gRPC endpoint of a component's Service, as other pods reach it. */}}
{{- define "pharos.endpoint" -}}
{{- printf "http://%s:50051" (include "pharos.componentName" .) }}
{{- end }}

{{/* The components this mode runs. */}}
{{- define "pharos.components" -}}
{{- if eq .Values.mode "distributed" }}config ingest query search alert{{ else }}all{{ end }}
{{- end }}

{{/* The settings file: values.settings plus the rule and routing files the chart mounts. */}}
{{- define "pharos.settingsToml" -}}
{{- $settings := deepCopy .Values.settings }}
{{- $alert := dict }}
{{- if .Values.rules }}
{{- $_ := set $alert "rule_files" (list "/etc/pharos/rules/*.yml" "/etc/pharos/rules/*.yaml") }}
{{- end }}
{{- if .Values.routing }}
{{- $_ := set $alert "routing_file" "/etc/pharos/routing.yml" }}
{{- end }}
{{- if $alert }}
{{- $_ := set $settings "alert" (mergeOverwrite (get $settings "alert" | default dict) $alert) }}
{{- end }}
{{- if $settings }}
{{- toToml $settings }}
{{- else }}
{{- "# every setting at its default; see `pharos settings`\n" }}
{{- end }}
{{- end }}
