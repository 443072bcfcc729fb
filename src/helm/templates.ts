/**
 * The chart's Go templates. `render.ts` produces the same objects from the same values (for `-o yaml` and
 * the tests, since no `helm` binary is at hand): change both together.
 */
const LABELS = (indent: string) =>
  [`${indent}app.kubernetes.io/name: {{ $name }}`, `${indent}app.kubernetes.io/instance: {{ $.Release.Name }}`].join(
    '\n',
  );

export const DEPLOYMENT_TEMPLATE = `{{- range $name, $svc := .Values.services }}
{{- if $svc.enabled }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ printf "%s-%s" $.Release.Name $name | trunc 63 | trimSuffix "-" }}
  labels:
${LABELS('    ')}
    app.kubernetes.io/managed-by: {{ $.Release.Service }}
spec:
  replicas: {{ $svc.replicaCount }}
  selector:
    matchLabels:
${LABELS('      ')}
  template:
    metadata:
      labels:
${LABELS('        ')}
    spec:
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ $svc.image | quote }}
          imagePullPolicy: {{ $svc.imagePullPolicy }}
          env:
            - name: SCONE_CONFIG_ID
              value: {{ $svc.configId | quote }}
            - name: SCONE_CAS_ADDR
              value: {{ $.Values.cas.address | quote }}
            {{- with $.Values.cas.fingerprint }}
            - name: VEIL_CAS_FINGERPRINT
              value: {{ . | quote }}
            {{- end }}
            {{- if eq $.Values.evidence "simulation" }}
            - name: VEIL_EVIDENCE
              value: "simulation"
            {{- end }}
          {{- with $svc.port }}
          ports:
            - name: service
              containerPort: {{ . }}
          {{- end }}
          {{- with $svc.memoryVolumes }}
          volumeMounts:
            {{- range $i, $path := . }}
            - name: memory-{{ $i }}
              mountPath: {{ $path | quote }}
            {{- end }}
          {{- end }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
      {{- with $svc.memoryVolumes }}
      volumes:
        {{- range $i, $path := . }}
        - name: memory-{{ $i }}
          emptyDir:
            medium: Memory
        {{- end }}
      {{- end }}
{{- end }}
{{- end }}
`;

/** One Service under the release's name for the service, and one under each alias (the names its certificates carry). */
export const SERVICE_TEMPLATE = `{{- range $name, $svc := .Values.services }}
{{- if and $svc.enabled $svc.port }}
{{- range $serviceName := prepend $svc.aliases (printf "%s-%s" $.Release.Name $name | trunc 63 | trimSuffix "-") }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $serviceName }}
  labels:
${LABELS('    ')}
    app.kubernetes.io/managed-by: {{ $.Release.Service }}
spec:
  type: ClusterIP
  selector:
${LABELS('    ')}
  ports:
    - name: service
      port: {{ $svc.port }}
      targetPort: service
{{- end }}
{{- end }}
{{- end }}
`;

export const NOTES_TEMPLATE = `The confidential mesh {{ .Chart.Name }} is installed as release {{ .Release.Name }}.
Each service attests to the CAS at {{ .Values.cas.address }} before its program starts; its secrets and
decrypted code live only in memory volumes. Watch the pods with:
  kubectl get pods -l app.kubernetes.io/instance={{ .Release.Name }}
{{- if eq .Values.evidence "simulation" }}
DEBUG MODE: the runtimes send SIMULATION evidence (VEIL_EVIDENCE=simulation), not a TEE's: for testing only.
{{- end }}
`;
