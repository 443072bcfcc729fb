import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Values of the CAS chart. */
export interface CasChartValues {
  image: string;
  imagePullPolicy: string;
  imagePullSecrets: Array<{ name: string }>;
  service: { type: string; port: number };
  persistence: { size: string; storageClass: string };
  /** A Secret holding `master.key`; without one the CAS generates its master key on the volume (0600). */
  masterKey: { existingSecret: string };
  resources: Record<string, unknown>;
}

export function casChartValues(image: string): CasChartValues {
  return {
    image,
    imagePullPolicy: 'IfNotPresent',
    imagePullSecrets: [],
    service: { type: 'ClusterIP', port: 8081 },
    persistence: { size: '1Gi', storageClass: '' },
    masterKey: { existingSecret: '' },
    resources: {},
  };
}

/** The CAS's labels at an indentation, and the metadata both objects share. */
const LABELS = (indent: string) =>
  `${indent}app.kubernetes.io/name: cas\n${indent}app.kubernetes.io/instance: {{ .Release.Name }}\n`;
const METADATA = `metadata:\n  name: {{ .Release.Name }}-cas\n  labels:\n${LABELS('    ')}`;

const STATEFULSET = `apiVersion: apps/v1
kind: StatefulSet
${METADATA}spec:
  serviceName: {{ .Release.Name }}-cas
  replicas: 1
  selector:
    matchLabels:
${LABELS('      ')}  template:
    metadata:
      labels:
${LABELS('        ')}    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: cas
          image: {{ .Values.image | quote }}
          imagePullPolicy: {{ .Values.imagePullPolicy }}
          args:
            - serve
            - --listen
            - 0.0.0.0:8081
            - --data
            - /data
            - --name
            - {{ .Release.Name }}-cas
            - --name
            - {{ .Release.Name }}-cas.{{ .Release.Namespace }}
            - --name
            - {{ .Release.Name }}-cas.{{ .Release.Namespace }}.svc
            {{- if .Values.masterKey.existingSecret }}
            - --master-key-file
            - /master-key/master.key
            {{- end }}
          ports:
            - name: api
              containerPort: 8081
          readinessProbe:
            httpGet:
              path: /v1/version
              port: api
              scheme: HTTPS
            periodSeconds: 5
          livenessProbe:
            httpGet:
              path: /v1/version
              port: api
              scheme: HTTPS
            initialDelaySeconds: 10
            periodSeconds: 20
          volumeMounts:
            - name: data
              mountPath: /data
            {{- if .Values.masterKey.existingSecret }}
            - name: master-key
              mountPath: /master-key
              readOnly: true
            {{- end }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
      {{- if .Values.masterKey.existingSecret }}
      volumes:
        - name: master-key
          secret:
            secretName: {{ .Values.masterKey.existingSecret }}
            defaultMode: 0400
      {{- end }}
  volumeClaimTemplates:
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
`;

const SERVICE = `apiVersion: v1
kind: Service
${METADATA}spec:
  type: {{ .Values.service.type }}
  selector:
${LABELS('    ')}  ports:
    - name: api
      port: {{ .Values.service.port }}
      targetPort: api
`;

/** Writes the CAS chart: a StatefulSet with a persistent volume for the store and master key, and a Service. */
export function writeCasChart(dir: string, values: CasChartValues): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(
    join(dir, 'Chart.yaml'),
    stringify({
      apiVersion: 'v2',
      name: 'veil-cas',
      description: "Veil's Configuration and Attestation Service",
      type: 'application',
      version: '0.1.0',
      appVersion: '0.1.0',
    }),
  );
  writeFileSync(join(dir, 'values.yaml'), stringify(values));
  writeFileSync(join(dir, 'templates', 'statefulset.yaml'), STATEFULSET);
  writeFileSync(join(dir, 'templates', 'service.yaml'), SERVICE);
  writeFileSync(
    join(dir, 'templates', 'NOTES.txt'),
    'The CAS answers at https://{{ .Release.Name }}-cas.{{ .Release.Namespace }}:{{ .Values.service.port }}.\nIts CA fingerprint is printed in its log: kubectl logs {{ .Release.Name }}-cas-0\n',
  );
}

/** What `helm template <release> -n <namespace>` renders from the templates above (tests and -o yaml). */
export function renderCasManifests(
  values: CasChartValues,
  release: string,
  namespace: string,
): Array<Record<string, unknown>> {
  const labels = { 'app.kubernetes.io/name': 'cas', 'app.kubernetes.io/instance': release };
  const secret = values.masterKey.existingSecret;
  const probe = (extra: Record<string, number>) => ({
    httpGet: { path: '/v1/version', port: 'api', scheme: 'HTTPS' },
    ...extra,
  });
  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: `${release}-cas`, labels },
    spec: {
      serviceName: `${release}-cas`,
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(values.imagePullSecrets.length ? { imagePullSecrets: values.imagePullSecrets } : {}),
          containers: [
            {
              name: 'cas',
              image: values.image,
              imagePullPolicy: values.imagePullPolicy,
              args: [
                'serve',
                '--listen',
                '0.0.0.0:8081',
                '--data',
                '/data',
                '--name',
                `${release}-cas`,
                '--name',
                `${release}-cas.${namespace}`,
                '--name',
                `${release}-cas.${namespace}.svc`,
                ...(secret ? ['--master-key-file', '/master-key/master.key'] : []),
              ],
              ports: [{ name: 'api', containerPort: 8081 }],
              readinessProbe: probe({ periodSeconds: 5 }),
              livenessProbe: probe({ initialDelaySeconds: 10, periodSeconds: 20 }),
              volumeMounts: [
                { name: 'data', mountPath: '/data' },
                ...(secret ? [{ name: 'master-key', mountPath: '/master-key', readOnly: true }] : []),
              ],
              resources: values.resources,
            },
          ],
          ...(secret ? { volumes: [{ name: 'master-key', secret: { secretName: secret, defaultMode: 0o400 } }] } : {}),
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(values.persistence.storageClass ? { storageClassName: values.persistence.storageClass } : {}),
            resources: { requests: { storage: values.persistence.size } },
          },
        },
      ],
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${release}-cas`, labels },
    spec: {
      type: values.service.type,
      selector: labels,
      ports: [{ name: 'api', port: values.service.port, targetPort: 'api' }],
    },
  };
  return [statefulSet, service];
}
