import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Service } from 'kubernetes-models/v1';
import {
  HELM_VERSIONS,
  type Doc,
  type Overrides,
  type Rendered,
  effectiveValues,
  helmBinaries,
  helmTemplate,
  inBatches,
  lint,
  lintObjects,
  scratch,
  sorted,
} from './helm-kit.js';
import { type CasChartValues, HelmError, casChartValues, renderCasManifests, writeCasChart } from './index.js';

const values = casChartValues('registry.example/veil/cas:0.1');

/** The HA form: PostgreSQL's URL and the shared master key from existing Secrets. */
const HA: Array<[string, unknown]> = [
  ['store.type', 'postgres'],
  ['replicaCount', 3],
  ['store.postgres.existingSecret', 'cas-postgres'],
  ['masterKey.existingSecret', 'cas-master-key'],
];

interface Case {
  name: string;
  release?: string;
  overrides?: Overrides;
  refused?: string;
  byHelm?: boolean;
}

const CASES: Case[] = [
  { name: 'defaults: SQLite on a volume' },
  { name: 'release demo-1', release: 'demo-1' },
  { name: 'release of 53 characters', release: `c${'x'.repeat(52)}` },
  { name: 'release a.b', release: 'a.b', refused: 'HELM_RELEASE_NAME' },
  { name: 'release 1demo', release: '1demo', refused: 'HELM_RELEASE_NAME' },
  { name: 'release Demo_1', release: 'Demo_1', refused: 'HELM_RELEASE_NAME', byHelm: true },
  { name: 'existing master-key Secret', overrides: { set: [['masterKey.existingSecret', 'cas-master-key']] } },
  {
    name: 'storage class and size, service type and port',
    overrides: {
      files: [{ persistence: { storageClass: 'fast', size: '5Gi' }, service: { type: 'LoadBalancer', port: 443 } }],
    },
  },
  {
    name: 'pull secrets, resources null',
    overrides: { files: [{ imagePullSecrets: [{ name: 'reg' }], resources: null }] },
  },
  { name: 'SQLite with 2 replicas', overrides: { set: [['replicaCount', 2]] }, refused: 'HELM_VALUES' },
  { name: 'unknown store type', overrides: { set: [['store.type', 'mysql']] }, refused: 'HELM_VALUES' },
  {
    name: 'bad master-key Secret name',
    overrides: { set: [['masterKey.existingSecret', 'Key_1']] },
    refused: 'HELM_NAME',
  },
  { name: 'HA: 3 replicas on PostgreSQL', overrides: { set: HA } },
  { name: 'HA: 1 replica on PostgreSQL', overrides: { set: [...HA, ['replicaCount', 1]] } },
  { name: 'HA in a values file', overrides: { files: [{ store: { type: 'postgres' } }], set: HA.slice(1) } },
  { name: 'HA: another key of the Secret', overrides: { set: [...HA, ['store.postgres.key', 'database-url']] } },
  {
    name: 'HA: minAvailable instead of maxUnavailable',
    overrides: { set: [...HA, ['podDisruptionBudget.maxUnavailable', null], ['podDisruptionBudget.minAvailable', 2]] },
  },
  {
    name: 'HA: maxUnavailable as a percentage',
    overrides: { files: [{ podDisruptionBudget: { maxUnavailable: '50%' } }], set: HA },
  },
  {
    name: 'HA: both disruption bounds',
    overrides: { set: [...HA, ['podDisruptionBudget.minAvailable', 2]] },
    refused: 'HELM_VALUES',
  },
  {
    name: 'HA without the database Secret',
    overrides: { set: HA.filter(([k]) => !k.startsWith('store.postgres')) },
    refused: 'HELM_VALUES',
  },
  {
    name: 'HA without a shared master key',
    overrides: { set: HA.filter(([k]) => k !== 'masterKey.existingSecret') },
    refused: 'HELM_VALUES',
  },
  {
    name: 'HA with a bad Secret name',
    overrides: { set: [...HA, ['store.postgres.existingSecret', 'pg.']] },
    refused: 'HELM_NAME',
  },
  {
    name: 'HA with a bad Secret key',
    overrides: { set: [...HA, ['store.postgres.key', 'a/b']] },
    refused: 'HELM_NAME',
  },
  { name: 'HA, release demo-1', release: 'demo-1', overrides: { set: HA } },
];

function veil(c: Case, namespace: string): Rendered & { code?: string } {
  try {
    const v = effectiveValues<CasChartValues>(values, c.overrides ?? {});
    return { ok: true, docs: JSON.parse(JSON.stringify(renderCasManifests(v, c.release ?? 'veil', namespace))) };
  } catch (err) {
    if (!(err instanceof HelmError)) throw err;
    return { ok: false, error: `${err.message}; ${err.hint}`, code: err.code };
  }
}

const named = (docs: Doc[], kind: string, name?: unknown) =>
  docs.filter((d) => d['kind'] === kind && (name === undefined || (d['metadata'] as Doc)['name'] === name));

/** What the CAS chart promises in each form, checked on Helm's own output. */
function checkForm(docs: Doc[], release: string, postgres: boolean): void {
  for (const d of docs) {
    const model = { Deployment, StatefulSet, Service, PodDisruptionBudget }[String(d['kind'])];
    assert.ok(model, `unexpected kind ${String(d['kind'])}`);
    new model(d as never).validate();
  }
  const services = named(docs, 'Service').filter((s) => (s['spec'] as Doc)['clusterIP'] !== 'None');
  assert.deepEqual(
    services.map((s) => (s['metadata'] as Doc)['name']),
    [`${release}-cas`],
    'one Service name: one CAS identity',
  );
  const workload = named(docs, postgres ? 'Deployment' : 'StatefulSet')[0] as {
    spec: {
      serviceName?: string;
      template: { metadata: { annotations?: Doc }; spec: { containers: Array<Record<string, unknown>> } };
    } & Doc;
  };
  assert.deepEqual(workload.spec.template.metadata.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '8081',
    'prometheus.io/path': '/metrics',
    'prometheus.io/scheme': 'https',
  });
  const container = workload.spec.template.spec.containers[0]!;
  const args = container['args'] as string[];
  assert.ok(args.includes(`${release}-cas`), 'the certificate names the Service');
  const ready = (container['readinessProbe'] as { httpGet: { path: string } }).httpGet.path;
  assert.equal((container['livenessProbe'] as { httpGet: { path: string } }).httpGet.path, '/healthz');
  assert.equal(ready, '/readyz', 'readiness includes the store and the keys');
  if (!postgres) {
    const governing = named(docs, 'Service', workload.spec.serviceName)[0];
    assert.equal((governing?.['spec'] as Doc | undefined)?.['clusterIP'], 'None', 'serviceName is a headless Service');
    return;
  }
  assert.equal(named(docs, 'StatefulSet').length, 0);
  assert.equal((workload.spec as Doc)['volumeClaimTemplates'], undefined, 'no PVC in postgres mode');
  assert.ok(!args.some((a) => a.includes('postgres')), 'the database URL is never an argument');
  const env = container['env'] as Array<{ name: string; valueFrom?: { secretKeyRef?: unknown } }>;
  assert.ok(env.find((e) => e.name === 'VEIL_CAS_STORE')?.valueFrom?.secretKeyRef, 'VEIL_CAS_STORE from a Secret');
  assert.ok(args.includes('--master-key-file'), 'the shared master key');
  assert.equal(named(docs, 'PodDisruptionBudget').length, 1);
}

describe('the CAS chart, checked by the real Helm 3 and Helm 4', () => {
  const tmp = scratch();
  const chart = join(tmp.dir, 'cas');
  let helm: Record<string, string>;
  before(async () => {
    helm = await helmBinaries();
    writeCasChart(chart, values);
  });
  after(() => tmp.remove());

  it('passes helm lint --strict in both forms', async () => {
    const ha = HA.map(([k, v]) => `${k}=${String(v)}`);
    for (const version of HELM_VERSIONS)
      for (const set of [[], ['masterKey.existingSecret=k'], ha]) {
        const result = await lint(helm[version]!, chart, set);
        assert.ok(result.ok, `helm ${version} ${set.join(' ')}: ${result.output}`);
      }
  });

  it('renders what Veil renders and refuses what Veil refuses, in the SQLite and the HA form', async (t) => {
    const runs = CASES.flatMap((c) => HELM_VERSIONS.map((version) => ({ c, version })));
    const counts = { compared: 0, refused: 0, linted: 0 };
    const rendered: Record<string, Doc[]> = Object.fromEntries(HELM_VERSIONS.map((v) => [v, []]));
    await inBatches(runs, 2, async ({ c, version }) => {
      const release = c.release ?? 'veil';
      const real = await helmTemplate(helm[version]!, chart, release, 'veil-system', c.overrides ?? {}, tmp.dir);
      const ours = veil(c, 'veil-system');
      const what = `${c.name}, helm ${version}`;
      if (c.refused) {
        assert.ok(!ours.ok && !real.ok, `${what}: Veil ${ours.ok}, Helm ${real.ok}, both must refuse`);
        assert.equal(ours.code, c.refused, what);
        assert.ok(real.error.includes(c.byHelm ? 'invalid release name' : ours.error), `${what}: ${real.error}`);
        counts.refused++;
        return;
      }
      assert.ok(ours.ok, `${what}: Veil refuses: ${ours.ok ? '' : ours.error}`);
      assert.ok(real.ok, `${what}: Helm refuses: ${real.ok ? '' : real.error}`);
      assert.deepEqual(sorted(real.docs), sorted(ours.docs), what);
      counts.compared++;
      checkForm(real.docs, release, effectiveValues(values, c.overrides ?? {}).store.type === 'postgres');
      if (real.ok) rendered[version]!.push(...real.docs);
    });
    for (const version of HELM_VERSIONS) {
      const named = await lintObjects(helm[version]!, rendered[version]!, tmp.dir);
      assert.ok(named.ok, `helm ${version}: the rendered objects fail helm lint --strict: ${named.output}`);
      counts.linted += rendered[version]!.length;
    }
    t.diagnostic(
      `CAS chart: ${CASES.length} cases x ${HELM_VERSIONS.length} Helm versions: ${counts.compared} renders`,
    );
    t.diagnostic(`equal to Veil's, ${counts.refused} refusals alike, ${counts.linted} rendered objects linted`);
  });
});
