{{/*
One component: its workload (a Deployment, or a StatefulSet for search), its gRPC and HTTP
Services, and its optional HorizontalPodAutoscaler, PodDisruptionBudget and ServiceMonitor.
Call with (dict "root" $ "component" "ingest" "values" .Values.ingest); `all` is monolithic mode.
*/}}

{{- define "pharos.component" -}}
{{- $root := .root }}
{{- $c := .component }}
{{- $v := .values }}
{{- $name := include "pharos.componentName" . }}
{{- $statefulSet := eq $c "search" }}
{{- $persistent := and (eq $c "all") $v.persistence.enabled }}
---
apiVersion: apps/v1
kind: {{ ternary "StatefulSet" "Deployment" $statefulSet }}
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "pharos.selectorLabels" . | nindent 6 }}
  {{- if $statefulSet }}
  serviceName: {{ $name }}-headless
  # Replicas share nothing but the database: start and stop them all at once.
  podManagementPolicy: Parallel
  # A pod is replaced in place, keeping its claim: two pods never hold one snapshot dir.
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      partition: {{ $v.partition }}
  {{- if $v.persistence.enabled }}
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Retain
    whenScaled: Retain
  volumeClaimTemplates:
    - apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
        labels:
          {{- include "pharos.selectorLabels" . | nindent 10 }}
      spec:
        accessModes:
          {{- toYaml $v.persistence.accessModes | nindent 10 }}
        {{- with $v.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $v.persistence.size }}
  {{- end }}
  {{- else if $persistent }}
  # One pod holds the volume (the SQLite file and the search snapshot lock): stop the old pod
  # before the new one starts.
  strategy:
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: {{ $v.rollingUpdate.maxUnavailable }}
      maxSurge: {{ $v.rollingUpdate.maxSurge }}
  {{- end }}
  template:
    {{- include "pharos.podTemplate" . | trim | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
  {{- with $root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "pharos.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: 50051
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-http
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
  {{- with $root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "pharos.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 8081
      targetPort: http
      protocol: TCP
      appProtocol: http
{{- if $statefulSet }}
---
# The StatefulSet's governing Service: stable names for each replica.
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-headless
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "pharos.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: 50051
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
{{- end }}
{{- if $persistent }}
{{- if not $v.persistence.existingClaim }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ $name }}-data
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
  annotations:
    # The SQLite database lives here: keep it when the release is uninstalled.
    helm.sh/resource-policy: keep
spec:
  accessModes:
    {{- toYaml $v.persistence.accessModes | nindent 4 }}
  {{- with $v.persistence.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ $v.persistence.size }}
{{- end }}
{{- end }}
{{- if $v.autoscaling.enabled }}
{{- $a := $v.autoscaling }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ ternary "StatefulSet" "Deployment" $statefulSet }}
    name: {{ $name }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- if $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- end }}
    {{- if $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $a.targetMemoryUtilizationPercentage }}
    {{- end }}
    {{- if $a.customMetric.enabled }}
    - type: Pods
      pods:
        metric:
          name: {{ $a.customMetric.name }}
        target:
          type: AverageValue
          averageValue: {{ $a.customMetric.targetAverageValue | quote }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "pharos.selectorLabels" . | nindent 6 }}
{{- end }}
{{- if $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "pharos.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ $root.Release.Namespace }}
  endpoints:
    # Only the `-http` Service has a port named http; the gRPC Service yields no target.
    - port: http
      path: /metrics
      interval: {{ $root.Values.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}

{{/* The pod template of a component's workload. */}}
{{- define "pharos.podTemplate" -}}
{{- $root := .root }}
{{- $c := .component }}
{{- $v := .values }}
{{- $name := include "pharos.componentName" . }}
{{- $health := include "pharos.healthService" $c }}
metadata:
  labels:
    {{- include "pharos.labels" . | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when the settings, rules or routing change.
    checksum/settings: {{ include (print $root.Template.BasePath "/settings.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "pharos.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
  # Service links would put PHAROS_<SERVICE>_* variables (like PHAROS_CONFIG_PORT) into the
  # environment, where PHAROS_* is read as settings.
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "pharos.podSecurityContext" $root | nindent 4 }}
  containers:
    - name: pharos
      image: {{ include "pharos.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        - serve
        - --target
        - {{ $c }}
        - --grpc-addr
        - 0.0.0.0:50051
        - --http-addr
        - 0.0.0.0:8081
        - --data-dir
        - {{ $root.Values.dataDir }}
        - --log-format
        - {{ $root.Values.logFormat }}
        {{- range $v.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: PHAROS_CONFIG_FILE
          value: /etc/pharos/pharos.toml
        {{- if include "pharos.hasDatabase" $root }}
        - name: PHAROS_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "pharos.databaseSecretName" $root }}
              key: {{ include "pharos.databaseSecretKey" $root }}
        {{- end }}
        {{- if $root.Values.auth.enabled }}
        - name: PHAROS_SERVER__AUTH__TOKENS_FILE
          value: /etc/pharos/auth/tokens
        {{- end }}
        {{- if eq $c "ingest" }}
        - name: PHAROS_INGEST__CONFIG_ENDPOINT
          value: {{ include "pharos.endpoint" (dict "root" $root "component" "config") }}
        {{- if $root.Values.auth.enabled }}
        - name: PHAROS_INGEST__CONFIG_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.auth.existingSecret }}
              key: {{ $root.Values.auth.serviceTokenKey }}
        {{- end }}
        {{- end }}
        {{- if eq $c "query" }}
        - name: PHAROS_QUERY__INGEST_ENDPOINT
          value: {{ include "pharos.endpoint" (dict "root" $root "component" "ingest") }}
        {{- if $root.Values.auth.enabled }}
        - name: PHAROS_QUERY__SERVICE_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.auth.existingSecret }}
              key: {{ $root.Values.auth.serviceTokenKey }}
        {{- end }}
        {{- end }}
        {{- if eq $c "alert" }}
        - name: PHAROS_ALERT__QUERY_ENDPOINT
          value: {{ include "pharos.endpoint" (dict "root" $root "component" "query") }}
        - name: PHAROS_ALERT__INGEST_ENDPOINT
          value: {{ include "pharos.endpoint" (dict "root" $root "component" "ingest") }}
        - name: PHAROS_ALERT__CONFIG_ENDPOINT
          value: {{ include "pharos.endpoint" (dict "root" $root "component" "config") }}
        {{- if $root.Values.auth.enabled }}
        - name: PHAROS_ALERT__SERVICE_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.auth.existingSecret }}
              key: {{ $root.Values.auth.serviceTokenKey }}
        {{- end }}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: grpc
          containerPort: 50051
          protocol: TCP
        - name: http
          containerPort: 8081
          protocol: TCP
      # Native gRPC probes against grpc.health.v1 (open even when auth is on).
      startupProbe:
        grpc:
          port: 50051
          service: {{ $health | quote }}
        periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
        failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
      livenessProbe:
        grpc:
          port: 50051
          service: {{ $health | quote }}
        periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
      readinessProbe:
        grpc:
          port: 50051
          service: {{ $health | quote }}
        periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- include "pharos.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: {{ $root.Values.dataDir }}
        - name: tmp
          mountPath: /tmp
        - name: settings
          mountPath: /etc/pharos/pharos.toml
          subPath: pharos.toml
          readOnly: true
        {{- if $root.Values.routing }}
        - name: settings
          mountPath: /etc/pharos/routing.yml
          subPath: routing.yml
          readOnly: true
        {{- end }}
        {{- if $root.Values.rules }}
        - name: rules
          mountPath: /etc/pharos/rules
          readOnly: true
        {{- end }}
        {{- if $root.Values.auth.enabled }}
        - name: auth
          mountPath: /etc/pharos/auth
          readOnly: true
        {{- end }}
  volumes:
    {{- if eq $c "all" }}
    {{- if $v.persistence.enabled }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-data" $name) $v.persistence.existingClaim }}
    {{- else }}
    - name: data
      emptyDir: {}
    {{- end }}
    {{- else if and (eq $c "search") $v.persistence.enabled }}
    {{- /* `data` comes from the StatefulSet's volumeClaimTemplates */}}
    {{- else }}
    - name: data
      emptyDir: {}
    {{- end }}
    - name: tmp
      emptyDir: {}
    - name: settings
      configMap:
        name: {{ include "pharos.fullname" $root }}-settings
    {{- if $root.Values.rules }}
    - name: rules
      configMap:
        name: {{ include "pharos.fullname" $root }}-rules
    {{- end }}
    {{- if $root.Values.auth.enabled }}
    - name: auth
      secret:
        secretName: {{ $root.Values.auth.existingSecret }}
        items:
          - key: {{ $root.Values.auth.tokensKey }}
            path: tokens
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  affinity:
    {{- if $v.affinity }}
    {{- toYaml $v.affinity | nindent 4 }}
    {{- else }}
    # Spread replicas across nodes when the scheduler can.
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "pharos.selectorLabels" . | nindent 16 }}
    {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* The pod security context of every Pharos pod (the image runs as 65532). */}}
{{- define "pharos.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The container security context of every Pharos container. */}}
{{- define "pharos.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}
