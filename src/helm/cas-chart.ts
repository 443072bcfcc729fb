import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CAS_CHECKS, CAS_DEPLOYMENT, CAS_NOTES, CAS_PDB, CAS_SERVICE, CAS_STATEFULSET } from './cas-templates.js';
import { RULES, SECRET_KEY, SUBDOMAIN, checkRelease, refuse } from './rules.js';

type IntOrString = number | string | null | undefined;

/** Values of the CAS chart. */
export interface CasChartValues {
  image: string;
  imagePullPolicy: string;
  imagePullSecrets: Array<{ name: string }>;
  /** With store.type postgres only: SQLite's store lives on one replica's volume. */
  replicaCount: number;
  service: { type: string; port: number };
  /**
   * `sqlite`: a StatefulSet of one with a volume. `postgres`: a Deployment of replicaCount replicas that read
   * the database URL (with its password) from key `key` of Secret `existingSecret` (env VEIL_CAS_STORE).
   */
  store: { type: 'sqlite' | 'postgres'; postgres: { existingSecret: string; key: string } };
  /** With store.type sqlite only. */
  persistence: { size: string; storageClass: string };
  /**
   * A Secret holding `master.key`; without one a SQLite CAS generates its master key on its volume (0600).
   * Required with postgres: every replica must open what the others sealed.
   */
  masterKey: { existingSecret: string };
  /** With store.type postgres: one of the two (maxUnavailable 1 when neither is given). */
  podDisruptionBudget: { minAvailable?: IntOrString; maxUnavailable?: IntOrString };
  resources: Record<string, unknown>;
}

export function casChartValues(image: string): CasChartValues {
  return {
    image,
    imagePullPolicy: 'IfNotPresent',
    imagePullSecrets: [],
    replicaCount: 1,
    service: { type: 'ClusterIP', port: 8081 },
    store: { type: 'sqlite', postgres: { existingSecret: '', key: 'url' } },
    persistence: { size: '1Gi', storageClass: '' },
    masterKey: { existingSecret: '' },
    podDisruptionBudget: { maxUnavailable: 1 },
    resources: {},
  };
}

/** Writes the CAS chart: see cas-templates.ts for its two forms. */
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
  writeFileSync(
    join(dir, 'values.yaml'),
    '# HA: --set store.type=postgres,replicaCount=3,store.postgres.existingSecret=S,masterKey.existingSecret=K\n' +
      stringify(values),
  );
  const templates = {
    '_checks.tpl': CAS_CHECKS,
    'statefulset.yaml': CAS_STATEFULSET,
    'deployment.yaml': CAS_DEPLOYMENT,
    'pdb.yaml': CAS_PDB,
    'service.yaml': CAS_SERVICE,
    'NOTES.txt': CAS_NOTES,
  };
  for (const [name, text] of Object.entries(templates)) writeFileSync(join(dir, 'templates', name), text);
}

const given = (v: unknown): boolean => v !== undefined && v !== null && String(v) !== '';
const badSubdomain = (v: unknown) => String(v).length > 253 || !new RegExp(SUBDOMAIN).test(String(v));

/** The checks of CAS_CHECKS, in its order. */
function checkCas(values: CasChartValues, release: string): void {
  checkRelease(release);
  const store = String(values.store?.type);
  if (store !== 'sqlite' && store !== 'postgres') throw refuse(RULES.storeType, store);
  const masterKey = values.masterKey?.existingSecret;
  if (masterKey && badSubdomain(masterKey)) throw refuse(RULES.secretName, 'masterKey.existingSecret', masterKey);
  if (store === 'sqlite') {
    if (Math.trunc(Number(values.replicaCount)) !== 1) throw refuse(RULES.sqliteReplicas, values.replicaCount);
    return;
  }
  const pg = values.store.postgres ?? {};
  if (!pg.existingSecret) throw refuse(RULES.postgresSecret);
  if (badSubdomain(pg.existingSecret))
    throw refuse(RULES.secretName, 'store.postgres.existingSecret', pg.existingSecret);
  if (!new RegExp(SECRET_KEY).test(String(pg.key))) throw refuse(RULES.secretKey, 'store.postgres.key', String(pg.key));
  if (!masterKey) throw refuse(RULES.postgresMasterKey);
  const pdb = values.podDisruptionBudget ?? {};
  if (given(pdb.minAvailable) && given(pdb.maxUnavailable)) throw refuse(RULES.disruption);
}

/** Prometheus's pod discovery convention: the CAS's /metrics on its API port, over HTTPS. */
export const SCRAPE_ANNOTATIONS = {
  'prometheus.io/scrape': 'true',
  'prometheus.io/port': '8081',
  'prometheus.io/path': '/metrics',
  'prometheus.io/scheme': 'https',
};

/** What `helm template <release> -n <namespace>` renders from the templates (tests and --yaml), or its refusal. */
export function renderCasManifests(
  values: CasChartValues,
  release: string,
  namespace: string,
): Array<Record<string, unknown>> {
  checkCas(values, release);
  const postgres = values.store.type === 'postgres';
  const labels = { 'app.kubernetes.io/name': 'cas', 'app.kubernetes.io/instance': release };
  const metadata = (suffix = '') => ({ name: `${release}-cas${suffix}`, labels });
  const template = {
    metadata: { labels, annotations: SCRAPE_ANNOTATIONS },
    spec: podSpec(values, release, namespace, postgres),
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(),
    spec: {
      type: values.service.type,
      selector: labels,
      ports: [{ name: 'api', port: values.service.port, targetPort: 'api' }],
    },
  };
  if (postgres) {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: metadata(),
      spec: { replicas: values.replicaCount, selector: { matchLabels: labels }, template },
    };
    const pdb = values.podDisruptionBudget ?? {};
    const budget = given(pdb.minAvailable)
      ? { minAvailable: pdb.minAvailable }
      : { maxUnavailable: given(pdb.maxUnavailable) ? pdb.maxUnavailable : 1 };
    const disruption = {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: metadata(),
      spec: { ...budget, selector: { matchLabels: labels } },
    };
    return [deployment, disruption, service];
  }
  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: metadata(),
    spec: {
      serviceName: `${release}-cas-pods`,
      replicas: 1,
      selector: { matchLabels: labels },
      template,
      volumeClaimTemplates: [volumeClaim(values)],
    },
  };
  const headless = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata('-pods'),
    spec: { clusterIP: 'None', selector: labels, ports: [{ name: 'api', port: 8081, targetPort: 'api' }] },
  };
  return [statefulSet, service, headless];
}

function volumeClaim(values: CasChartValues) {
  return {
    metadata: { name: 'data' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(values.persistence.storageClass ? { storageClassName: values.persistence.storageClass } : {}),
      resources: { requests: { storage: values.persistence.size } },
    },
  };
}

function podSpec(values: CasChartValues, release: string, namespace: string, postgres: boolean) {
  const secret = values.masterKey.existingSecret;
  const probe = (path: string, extra: Record<string, number>) => ({
    httpGet: { path, port: 'api', scheme: 'HTTPS' },
    ...extra,
  });
  const names = [`${release}-cas`, `${release}-cas.${namespace}`, `${release}-cas.${namespace}.svc`];
  const container = {
    name: 'cas',
    image: values.image,
    imagePullPolicy: values.imagePullPolicy,
    args: [
      'serve',
      '--listen',
      '0.0.0.0:8081',
      ...(postgres ? [] : ['--data', '/data']),
      ...names.flatMap((n) => ['--name', n]),
      ...(secret ? ['--master-key-file', '/master-key/master.key'] : []),
    ],
    ...(postgres ? { env: [storeEnv(values)] } : {}),
    ports: [{ name: 'api', containerPort: 8081 }],
    // Liveness checks the process only: a database outage takes replicas out of the Service, never restarts them.
    readinessProbe: probe('/readyz', { periodSeconds: 5 }),
    livenessProbe: probe('/healthz', { initialDelaySeconds: 10, periodSeconds: 20 }),
    volumeMounts: [
      ...(postgres ? [] : [{ name: 'data', mountPath: '/data' }]),
      ...(secret ? [{ name: 'master-key', mountPath: '/master-key', readOnly: true }] : []),
    ],
    resources: values.resources ?? {},
  };
  return {
    ...(values.imagePullSecrets?.length ? { imagePullSecrets: values.imagePullSecrets } : {}),
    ...(postgres ? { affinity: spread(release) } : {}),
    containers: [container],
    ...(secret ? { volumes: [{ name: 'master-key', secret: { secretName: secret, defaultMode: 0o400 } }] } : {}),
  };
}

/** The database URL holds its password: it comes from the Secret, never from the arguments. */
function storeEnv(values: CasChartValues) {
  const { existingSecret, key } = values.store.postgres;
  return { name: 'VEIL_CAS_STORE', valueFrom: { secretKeyRef: { name: existingSecret, key } } };
}

/** Replicas on distinct nodes where the scheduler can: the loss of one node takes one replica. */
function spread(release: string) {
  const matchLabels = { 'app.kubernetes.io/name': 'cas', 'app.kubernetes.io/instance': release };
  const podAffinityTerm = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels } };
  return { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm }] } };
}
