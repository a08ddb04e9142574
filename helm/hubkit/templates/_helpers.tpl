{{/* Labels every HubKit object carries. */}}
{{- define "hubkit.labels" -}}
app.kubernetes.io/name: hubkit
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "hubkit.selector" -}}
app.kubernetes.io/name: hubkit
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Cluster-scoped names must not clash between releases (one HubKit release per namespace). */}}
{{- define "hubkit.clusterName" -}}
{{- printf "hubkit-%s-%s" .root.Release.Namespace .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The pod and container security settings of PodSecurity "restricted". */}}
{{- define "hubkit.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
fsGroup: 65534
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "hubkit.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* An image reference: the image's own repository and tag, else <images.registry>/<name> and images.tag.
     Arguments: root, image (its values), name (the image's name under images.registry). */}}
{{- define "hubkit.image" -}}
{{- $repository := .image.repository | default (printf "%s/%s" .root.Values.images.registry .name) -}}
{{- printf "%s:%s" $repository (.image.tag | default .root.Values.images.tag) -}}
{{- end -}}

{{/* A HubKit service Deployment: settings file from a ConfigMap, /health and /metrics on one port.
     Arguments: root, component, command, port, replicas, env (list), extraVolumes, extraMounts, spec (values). */}}
{{- define "hubkit.serviceDeployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hubkit-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hubkit.labels" . | nindent 4 }}
spec:
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      {{- include "hubkit.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "hubkit.selector" . | nindent 8 }}
        hubkit.dev/service: "true"
      annotations:
        checksum/settings: {{ .settings | sha256sum }}
    spec:
      serviceAccountName: hubkit-{{ .component }}
      automountServiceAccountToken: {{ .kubeAccess }}
      securityContext:
        {{- include "hubkit.podSecurity" . | nindent 8 }}
      {{- with .spec.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .spec.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "hubkit.image" (dict "root" .root "image" .root.Values.services.image "name" "services") }}
          imagePullPolicy: {{ .root.Values.services.image.pullPolicy }}
          command: {{ toJson .command }}
          {{- with .env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
          readinessProbe:
            httpGet: {path: /health, port: http}
            periodSeconds: 10
          livenessProbe:
            tcpSocket: {port: http}
            periodSeconds: 20
            failureThreshold: 6
          resources:
            {{- toYaml .spec.resources | nindent 12 }}
          securityContext:
            {{- include "hubkit.containerSecurity" . | nindent 12 }}
          volumeMounts:
            - name: settings
              mountPath: /etc/hubkit
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- with .extraMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: settings
          configMap:
            name: hubkit-{{ .component }}
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
        {{- with .extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: hubkit-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hubkit.labels" . | nindent 4 }}
spec:
  selector:
    {{- include "hubkit.selector" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: hubkit-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "hubkit.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/* zero-to-jupyterhub's hub ServiceAccount: jupyterhub.hub.serviceAccount.name, else "<fullnameOverride>-hub",
     else "hub" (z2jh's default names, which hub.apiUrl's default assumes too). */}}
{{- define "hubkit.hubServiceAccount" -}}
{{- $z2jh := .Values.jupyterhub | default dict -}}
{{- $name := dig "hub" "serviceAccount" "name" "" $z2jh -}}
{{- if $name -}}
{{- $name -}}
{{- else if $z2jh.fullnameOverride -}}
{{- printf "%s-hub" $z2jh.fullnameOverride -}}
{{- else -}}
hub
{{- end -}}
{{- end -}}
