import { GO_CHECK_RELEASE, RULES, SECRET_KEY, SUBDOMAIN, goFail } from './rules.js';

/**
 * The CAS chart's Go templates. `cas-chart.ts` renders the same objects from the same values and refuses the
 * same values; the tests run both through the real Helm 3 and 4 and compare: change both together.
 * Two forms: `store.type: sqlite` (one replica, a StatefulSet whose volume holds the store, behind a headless
 * Service) and `store.type: postgres` (N replicas of a Deployment sharing one database and one master key,
 * no volume, a PodDisruptionBudget). Either way one Service name, so one CAS identity.
 */
const LABELS = (indent: string) =>
  `${indent}app.kubernetes.io/name: cas\n${indent}app.kubernetes.io/instance: {{ .Release.Name }}\n`;
const metadata = (suffix: string) =>
  `metadata:\n  name: {{ .Release.Name }}-cas${suffix}\n  labels:\n${LABELS('    ')}`;

/** Whether a value is given: neither null (or absent) nor empty. */
const GIVEN = (expr: string) => `(not (or (kindIs "invalid" ${expr}) (eq (toString ${expr}) "")))`;

const subdomain = (expr: string) =>
  `(or (gt (len (toString ${expr})) 253) (not (regexMatch \`${SUBDOMAIN}\` (toString ${expr}))))`;

export const CAS_CHECKS = `{{- define "veil-cas.checks" -}}
${GO_CHECK_RELEASE}
{{- $store := toString .Values.store.type }}
{{- if not (has $store (list "sqlite" "postgres")) }}
${goFail(RULES.storeType, '$store')}
{{- end }}
{{- if and .Values.masterKey.existingSecret ${subdomain('.Values.masterKey.existingSecret')} }}
${goFail(RULES.secretName, '"masterKey.existingSecret"', '(toString .Values.masterKey.existingSecret)')}
{{- end }}
{{- if eq $store "sqlite" }}
{{- if ne (int .Values.replicaCount) 1 }}
${goFail(RULES.sqliteReplicas, '.Values.replicaCount')}
{{- end }}
{{- else }}
{{- $pg := .Values.store.postgres }}
{{- if not $pg.existingSecret }}
${goFail(RULES.postgresSecret)}
{{- end }}
{{- if ${subdomain('$pg.existingSecret')} }}
${goFail(RULES.secretName, '"store.postgres.existingSecret"', '(toString $pg.existingSecret)')}
{{- end }}
{{- if not (regexMatch \`${SECRET_KEY}\` (toString $pg.key)) }}
${goFail(RULES.secretKey, '"store.postgres.key"', '(toString $pg.key)')}
{{- end }}
{{- if not .Values.masterKey.existingSecret }}
${goFail(RULES.postgresMasterKey)}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and ${GIVEN('$pdb.minAvailable')} ${GIVEN('$pdb.maxUnavailable')} }}
${goFail(RULES.disruption)}
{{- end }}
{{- end }}
{{- end }}
`;

const probe = (path: string, timing: string) => `httpGet:
              path: ${path}
              port: api
              scheme: HTTPS
            ${timing}`;

/** Prometheus's pod discovery convention: /metrics on the API port, over HTTPS (README "Metrics, health and logs"). */
const SCRAPE_ANNOTATIONS = `        prometheus.io/scrape: "true"
        prometheus.io/port: "8081"
        prometheus.io/path: /metrics
        prometheus.io/scheme: https
`;

/** The pod of either form; `postgres` reads the database URL from its Secret, never from the arguments. */
function pod(postgres: boolean): string {
  return `  template:
    metadata:
      labels:
${LABELS('        ')}      annotations:
${SCRAPE_ANNOTATIONS}    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
${postgres ? SPREAD : ''}      containers:
        - name: cas
          image: {{ .Values.image | quote }}
          imagePullPolicy: {{ .Values.imagePullPolicy }}
          args:
            - serve
            - --listen
            - 0.0.0.0:8081
${postgres ? '' : '            - --data\n            - /data\n'}            - --name
            - {{ .Release.Name }}-cas
            - --name
            - {{ .Release.Name }}-cas.{{ .Release.Namespace }}
            - --name
            - {{ .Release.Name }}-cas.{{ .Release.Namespace }}.svc
            {{- if .Values.masterKey.existingSecret }}
            - --master-key-file
            - /master-key/master.key
            {{- end }}
${postgres ? POSTGRES_ENV : ''}          ports:
            - name: api
              containerPort: 8081
          readinessProbe:
            ${probe('/readyz', 'periodSeconds: 5')}
          livenessProbe:
            ${probe('/healthz', 'initialDelaySeconds: 10\n            periodSeconds: 20')}
          volumeMounts:
${postgres ? '' : '            - name: data\n              mountPath: /data\n'}            {{- if .Values.masterKey.existingSecret }}
            - name: master-key
              mountPath: /master-key
              readOnly: true
            {{- end }}
          resources:
            {{- toYaml (default (dict) .Values.resources) | nindent 12 }}
      {{- if .Values.masterKey.existingSecret }}
      volumes:
        - name: master-key
          secret:
            secretName: {{ .Values.masterKey.existingSecret }}
            defaultMode: 0400
      {{- end }}
`;
}

/** Replicas on distinct nodes where the scheduler can: the loss of one node takes one replica. */
const SPREAD = `      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
${LABELS('                    ')}`;

const POSTGRES_ENV = `          env:
            - name: VEIL_CAS_STORE
              valueFrom:
                secretKeyRef:
                  name: {{ .Values.store.postgres.existingSecret }}
                  key: {{ .Values.store.postgres.key }}
`;

export const CAS_STATEFULSET = `{{- include "veil-cas.checks" . }}
{{- if eq .Values.store.type "sqlite" }}
apiVersion: apps/v1
kind: StatefulSet
${metadata('')}spec:
  serviceName: {{ .Release.Name }}-cas-pods
  replicas: 1
  selector:
    matchLabels:
${LABELS('      ')}${pod(false)}  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes:
          - ReadWriteOnce
        {{- with .Values.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ .Values.persistence.size }}
{{- end }}
`;

export const CAS_DEPLOYMENT = `{{- if eq .Values.store.type "postgres" }}
apiVersion: apps/v1
kind: Deployment
${metadata('')}spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
${LABELS('      ')}${pod(true)}{{- end }}
`;

export const CAS_PDB = `{{- if eq .Values.store.type "postgres" }}
{{- $pdb := .Values.podDisruptionBudget }}
apiVersion: policy/v1
kind: PodDisruptionBudget
${metadata('')}spec:
  {{- if ${GIVEN('$pdb.minAvailable')} }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ if ${GIVEN('$pdb.maxUnavailable')} }}{{ $pdb.maxUnavailable }}{{ else }}1{{ end }}
  {{- end }}
  selector:
    matchLabels:
${LABELS('      ')}{{- end }}
`;

/** The Service every client and every mesh uses; with SQLite also the StatefulSet's headless governing one. */
export const CAS_SERVICE = `apiVersion: v1
kind: Service
${metadata('')}spec:
  type: {{ .Values.service.type }}
  selector:
${LABELS('    ')}  ports:
    - name: api
      port: {{ .Values.service.port }}
      targetPort: api
{{- if eq .Values.store.type "sqlite" }}
---
apiVersion: v1
kind: Service
${metadata('-pods')}spec:
  clusterIP: None
  selector:
${LABELS('    ')}  ports:
    - name: api
      port: 8081
      targetPort: api
{{- end }}
`;

export const CAS_NOTES = `The CAS answers at https://{{ .Release.Name }}-cas.{{ .Release.Namespace }}:{{ .Values.service.port }}.
{{- if eq .Values.store.type "postgres" }}
{{ .Values.replicaCount }} replicas share the database and the master key: one CAS identity behind one Service.
Its CA fingerprint is printed in each replica's log: kubectl logs deploy/{{ .Release.Name }}-cas
{{- else }}
Its CA fingerprint is printed in its log: kubectl logs {{ .Release.Name }}-cas-0
{{- end }}
`;
