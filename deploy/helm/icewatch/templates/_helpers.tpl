{{/* Names and labels shared by every manifest of the chart. */}}

{{- define "icewatch.fullname" -}}
{{- printf "%s-icewatch" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: include "icewatch.selector" (list $ "collector") */}}
{{- define "icewatch.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: icewatch
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "icewatch.labels" -}}
{{- $root := index . 0 -}}
{{ include "icewatch.selector" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version }}
{{- end -}}

{{- define "icewatch.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag | quote }}
{{- end -}}

{{/* A secret's value as an env var, by reference: include "icewatch.secretEnv" (list $ "NAME" "apiKeys") */}}
{{- define "icewatch.secretEnv" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.name }}
      key: {{ index $root.Values.secrets.keys (index . 2) }}
{{- end -}}

{{- define "icewatch.kafkaEnv" -}}
- name: ICEWATCH_KAFKA__BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: ICEWATCH_TOPICS__PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
{{- end -}}

{{- define "icewatch.clickhouseEnv" -}}
- name: ICEWATCH_CLICKHOUSE__HOST
  value: {{ .Values.clickhouse.host | quote }}
- name: ICEWATCH_CLICKHOUSE__PORT
  value: {{ .Values.clickhouse.port | quote }}
- name: ICEWATCH_CLICKHOUSE__USER
  value: {{ .Values.clickhouse.user | quote }}
- name: ICEWATCH_CLICKHOUSE__DATABASE
  value: {{ .Values.clickhouse.database | quote }}
- name: ICEWATCH_CLICKHOUSE__CLUSTER
  value: {{ .Values.clickhouse.cluster | quote }}
{{ include "icewatch.secretEnv" (list . "ICEWATCH_CLICKHOUSE__PASSWORD" "clickhousePassword") }}
{{- end -}}

{{/* Pod annotations a Prometheus with the usual kubernetes_sd relabelling scrapes by (values.yaml,
"Metrics"), given the port that serves /metrics. */}}
{{- define "icewatch.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ . | quote }}
prometheus.io/path: /metrics
{{- end -}}

{{/* Ingress to a port from the peers of networkPolicy.scrapeFrom (none listed: from anywhere),
given (list <port> <peers>) */}}
{{- define "icewatch.ingressFrom" -}}
- ports:
    - {port: {{ index . 0 }}, protocol: TCP}
  {{- with index . 1 }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* The image runs as uid 10001 (deploy/Dockerfile); nothing needs to write outside its volumes. */}}
{{- define "icewatch.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
fsGroup: 10001
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "icewatch.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* An exec probe of a loopback URL, given "<port>/<path>" (processors, the evaluator and the
tailer answer on every address for Prometheus, and on loopback for this probe). */}}
{{- define "icewatch.loopbackProbe" -}}
exec:
  command:
    - python
    - -c
    - "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{{ . }}', timeout=3)"
{{- end -}}

{{/* Egress to DNS (UDP and TCP), given .Values.networkPolicy */}}
{{- define "icewatch.egressDns" -}}
- ports:
    - {port: {{ .dnsPort }}, protocol: UDP}
    - {port: {{ .dnsPort }}, protocol: TCP}
{{- end -}}
