import {
  CANONICAL_IPV4,
  GO_CAS_HOST,
  GO_CHECK_RELEASE,
  LABEL,
  LOOPBACK,
  NUMERIC_HOST,
  RULES,
  SERVICE_LABEL,
  goFail,
} from './rules.js';

/**
 * The chart's Go templates. `render.ts` produces the same objects from the same values, and refuses the same
 * values (for `-o yaml`); the tests run both through the real Helm 3 and 4 and compare: change both together.
 */
const LABELS = (indent: string) =>
  [`${indent}app.kubernetes.io/name: {{ $name }}`, `${indent}app.kubernetes.io/instance: {{ $.Release.Name }}`].join(
    '\n',
  );

const FULLNAME = '(printf "%s-%s" $.Release.Name $name | trunc 63 | trimSuffix "-")';

/**
 * The checks of rules.ts, run before anything renders. Alias Services are looked up in the cluster (at install:
 * `helm template` has none and finds nothing): one owned by another release is refused with the reason.
 */
export const CHECKS_TEMPLATE = `{{- define "veil.checks" -}}
${GO_CHECK_RELEASE}
${GO_CAS_HOST}
{{- if and (regexMatch \`${NUMERIC_HOST}\` $cas) (not (regexMatch \`${CANONICAL_IPV4}\` $cas)) }}
${goFail(RULES.numericHost, '(toString .Values.cas.address)')}
{{- end }}
{{- if regexMatch \`${LOOPBACK}\` $cas }}
${goFail(RULES.loopback, '(toString .Values.cas.address)')}
{{- end }}
{{- $taken := dict }}
{{- range $name, $svc := .Values.services }}
{{- if and $svc $svc.enabled }}
{{- if or (gt (len $name) 63) (not (regexMatch \`${SERVICE_LABEL}\` $name)) }}
${goFail(RULES.service, '$name')}
{{- end }}
{{- if $svc.port }}
{{- range $i, $n := prepend (default (list) $svc.aliases) ${FULLNAME} }}
{{- $n = toString $n }}
{{- if and (gt $i 0) (or (gt (len $n) 63) (not (regexMatch \`${LABEL}\` $n))) }}
${goFail(RULES.alias, '$n', '$name')}
{{- end }}
{{- if hasKey $taken $n }}
${goFail(RULES.taken, '$.Release.Name', '$n', '(get $taken $n)', '$name')}
{{- end }}
{{- $_ := set $taken $n $name }}
{{- if gt $i 0 }}
{{- $owner := dig "metadata" "labels" "app.kubernetes.io/instance" "" (lookup "v1" "Service" $.Release.Namespace $n) }}
{{- if and $owner (ne $owner $.Release.Name) }}
${goFail(RULES.otherRelease, '$n', '$name', '$owner', '$.Release.Namespace')}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
`;

export const DEPLOYMENT_TEMPLATE = `{{- include "veil.checks" . }}
{{- range $name, $svc := .Values.services }}
{{- if and $svc $svc.enabled }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ ${FULLNAME} }}
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
            {{- toYaml (default (dict) $svc.resources) | nindent 12 }}
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
{{- if and $svc $svc.enabled $svc.port }}
{{- range $serviceName := prepend (default (list) $svc.aliases) ${FULLNAME} }}
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
