import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
  stubCluster,
} from './helm-kit.js';
import { type ChartValues, HelmError, chartValues, renderManifests, writeChart } from './index.js';

const values = chartValues({
  casAddress: 'veil-cas.veil-system:8081',
  casFingerprint: 'ab'.repeat(32),
  imagePullSecrets: ['regcred'],
  services: [
    {
      name: 'flask',
      image: `registry.example/patients/api:1@sha256:${'1'.repeat(64)}`,
      configId: 'patient-records/flask/python3',
      port: 4996,
      memoryVolumes: ['/tls', '/app'],
      aliases: ['flask', 'api'],
    },
    {
      name: 'redis',
      image: 'registry.example/redis:7',
      configId: 'patient-records/redis/redis-server',
      port: 6379,
      memoryVolumes: ['/tls'],
      aliases: ['redis'],
    },
    {
      name: 'worker',
      image: 'registry.example/worker:1',
      configId: 'patient-records/worker/python3',
      port: null,
      memoryVolumes: [],
      aliases: ['worker'],
    },
  ],
});

interface Case {
  name: string;
  release?: string;
  overrides?: Overrides;
  /** The code both refuse with; none: both render the same objects. */
  refused?: string;
  /** Helm itself refuses the release name before any template runs. */
  byHelm?: boolean;
}

const CASES: Case[] = [
  { name: 'defaults' },
  { name: 'release veil', release: 'veil' },
  { name: 'release with a digit and a dash', release: 'demo-1' },
  { name: 'release of 53 characters (names cut at 63)', release: `r${'x'.repeat(52)}` },
  { name: 'release Demo_1', release: 'Demo_1', refused: 'HELM_RELEASE_NAME', byHelm: true },
  { name: 'release a.b', release: 'a.b', refused: 'HELM_RELEASE_NAME' },
  { name: 'release 1demo', release: '1demo', refused: 'HELM_RELEASE_NAME' },
  { name: 'release of 54 characters', release: `r${'x'.repeat(53)}`, refused: 'HELM_RELEASE_NAME', byHelm: true },
  { name: 'values file: replicas and image', overrides: { files: [{ services: { flask: { replicaCount: 3 } } }] } },
  {
    name: 'two values files, the later wins',
    overrides: {
      files: [
        { services: { flask: { replicaCount: 2, image: 'registry.example/api:2' } } },
        { services: { flask: { replicaCount: 4 } } },
      ],
    },
  },
  { name: '--set replicas', overrides: { set: [['services.redis.replicaCount', 5]] } },
  { name: 'disabled service', overrides: { set: [['services.redis.enabled', false]] } },
  { name: 'service removed with null', overrides: { set: [['services.worker', null]] } },
  { name: '--set aliases=null', overrides: { set: [['services.flask.aliases', null]] } },
  { name: 'values file aliases: null', overrides: { files: [{ services: { redis: { aliases: null } } }] } },
  {
    name: 'memoryVolumes and resources null',
    overrides: { files: [{ services: { flask: { memoryVolumes: null } } }] },
  },
  { name: 'resources set', overrides: { set: [['services.flask.resources.limits.memory', '512Mi']] } },
  { name: 'more aliases', overrides: { set: [['services.flask.aliases', ['api', 'patients']]] } },
  { name: 'a port for the worker', overrides: { set: [['services.worker.port', 8080]] } },
  {
    name: 'no pull secrets, no fingerprint',
    overrides: {
      set: [
        ['imagePullSecrets', null],
        ['cas.fingerprint', null],
      ],
    },
  },
  { name: 'simulation evidence', overrides: { set: [['evidence', 'simulation']] } },
  {
    name: 'alias taken by another service',
    overrides: { set: [['services.flask.aliases', ['redis']]] },
    refused: 'HELM_NAME_TAKEN',
  },
  {
    name: 'alias equal to a full name',
    overrides: { set: [['services.redis.aliases', ['demo-flask']]] },
    refused: 'HELM_NAME_TAKEN',
  },
  { name: 'alias not a label', overrides: { set: [['services.flask.aliases', ['Api_1']]] }, refused: 'HELM_NAME' },
  {
    name: 'service name starting with a digit (a DNS-1123 label, as meshes take them)',
    overrides: { files: [{ services: { '2fa': { ...values.services['redis'], aliases: ['otp'] } } }] },
  },
  {
    name: 'service name not a label',
    overrides: { files: [{ services: { new_svc: { ...values.services['redis'], configId: 'p/n/x' } } }] },
    refused: 'HELM_NAME',
  },
  { name: 'CAS on localhost', overrides: { set: [['cas.address', 'localhost:8081']] }, refused: 'HELM_CAS_ADDRESS' },
  { name: 'CAS on 127.0.0.1', overrides: { set: [['cas.address', '127.0.0.1:8081']] }, refused: 'HELM_CAS_ADDRESS' },
  { name: 'CAS on [::1]', overrides: { files: [{ cas: { address: '[::1]:8081' } }] }, refused: 'HELM_CAS_ADDRESS' },
  // Spellings of loopback a resolver accepts, and numeric IPv4 not written a.b.c.d (refused, whatever it reads).
  ...[
    'LOCALHOST:8081',
    'localhost.:8081',
    'ip6-loopback:8081',
    '[::ffff:127.0.0.1]:8081',
    '[::ffff:7f00:1]:8081',
    '[0:0::1]:8081',
    '[::1%lo]:8081',
    '[::]:8081',
    '2130706433:8081',
    '127.1:8081',
    '0x7f.1:8081',
    '0:8081',
    '0.0.0.0:8081',
    '10.1:8081',
  ].map((address) => ({
    name: `CAS on ${address}`,
    overrides: { files: [{ cas: { address } }] },
    refused: 'HELM_CAS_ADDRESS',
  })),
  ...['10.0.0.1:8081', 'cas.example.:8081', '[2001:db8::1]:8081', '[::ffff:10.0.0.1]:8081'].map((address) => ({
    name: `CAS on ${address} (not loopback)`,
    overrides: { files: [{ cas: { address } }] },
  })),
];

/** Veil's renderer on the values Helm's templates see, as objects or the code and text it refuses with. */
function veil(c: Case): Rendered & { code?: string } {
  try {
    const docs = renderManifests(effectiveValues<ChartValues>(values, c.overrides ?? {}), c.release ?? 'demo');
    return { ok: true, docs: JSON.parse(JSON.stringify(docs)) as Doc[] };
  } catch (err) {
    if (!(err instanceof HelmError)) throw err;
    return { ok: false, error: `${err.message}; ${err.hint}`, code: err.code };
  }
}

describe('the mesh chart, checked by the real Helm 3 and Helm 4', () => {
  const tmp = scratch();
  const chart = join(tmp.dir, 'mesh');
  let helm: Record<string, string>;
  before(async () => {
    helm = await helmBinaries();
    writeChart(chart, 'patient-records', values);
  });
  after(() => tmp.remove());

  // Lint mode turns `fail` into a log line, so the refusals are checked by helm template below.
  it('passes helm lint --strict, with the defaults and with overrides (aliases: null crashed it)', async () => {
    const sets = [[], ['services.flask.aliases=null'], ['services.redis.enabled=false', 'services.worker.port=80']];
    for (const version of HELM_VERSIONS)
      for (const set of sets) {
        const result = await lint(helm[version]!, chart, set);
        assert.ok(result.ok, `helm ${version} ${set.join(' ')}: ${result.output}`);
      }
  });

  it('renders what Veil renders, and refuses what Veil refuses, over every override case', async (t) => {
    const runs = CASES.flatMap((c) => HELM_VERSIONS.map((version) => ({ c, version })));
    let compared = 0;
    let refusals = 0;
    const rendered: Record<string, Doc[]> = Object.fromEntries(HELM_VERSIONS.map((v) => [v, []]));
    await inBatches(runs, 2, async ({ c, version }) => {
      const release = c.release ?? 'demo';
      const real = await helmTemplate(helm[version]!, chart, release, 'patients', c.overrides ?? {}, tmp.dir);
      const ours = veil(c);
      const what = `${c.name}, helm ${version}`;
      if (c.refused) {
        assert.equal(ours.ok, false, `${what}: Veil renders what it must refuse`);
        assert.equal(ours.code, c.refused, what);
        assert.equal(real.ok, false, `${what}: Helm renders what it must refuse`);
        if (!real.ok && !ours.ok)
          assert.ok(real.error.includes(c.byHelm ? 'invalid release name' : ours.error), `${what}: ${real.error}`);
        refusals++;
        return;
      }
      assert.ok(ours.ok, `${what}: Veil refuses: ${ours.ok ? '' : ours.error}`);
      assert.ok(real.ok, `${what}: Helm refuses: ${real.ok ? '' : real.error}`);
      assert.deepEqual(sorted(real.docs), sorted(ours.docs), what);
      compared++;
      if (real.ok) rendered[version]!.push(...real.docs);
    });
    // All cases' objects in one throwaway chart a version: lint checks each object's name by its kind's rule.
    for (const version of HELM_VERSIONS) {
      const named = await lintObjects(helm[version]!, rendered[version]!, tmp.dir);
      assert.ok(named.ok, `helm ${version}: the rendered objects fail helm lint --strict: ${named.output}`);
    }
    const linted = Object.values(rendered).reduce((n, docs) => n + docs.length, 0);
    t.diagnostic(`mesh chart: ${CASES.length} cases x ${HELM_VERSIONS.length} Helm versions: ${compared} renders`);
    t.diagnostic(`equal to Veil's, ${refusals} refusals alike, ${linted} rendered objects linted`);
  });

  it('lints rendered objects by Kubernetes name rules: the names a bad release would give are refused', async () => {
    const docs = renderManifests(values, 'demo').map((d) => {
      const metadata = d['metadata'] as { name: string };
      return { ...d, metadata: { ...metadata, name: metadata.name.replace(/^demo-/, '1demo-') } };
    });
    for (const version of HELM_VERSIONS) {
      const named = await lintObjects(helm[version]!, docs, tmp.dir);
      assert.ok(!named.ok && /DNS-1035 label/.test(named.output), `helm ${version}: ${named.output}`);
    }
  });

  it("refuses at install an alias Service another release of the namespace owns (the chart's lookup)", async () => {
    const cluster = await stubCluster({ 'patients/api': 'other', 'patients/redis': 'demo' }, tmp.dir);
    try {
      const view = { namespace: 'patients', serviceOwner: (n: string) => ({ api: 'other', redis: 'demo' })[n] };
      const ours = (() => {
        try {
          return renderManifests(values, 'demo', view) && '';
        } catch (err) {
          return err instanceof HelmError ? `${err.message}; ${err.hint}` : String(err);
        }
      })();
      assert.match(ours, /"api" .*belongs to release "other"/);
      for (const version of HELM_VERSIONS) {
        const taken = await helmTemplate(helm[version]!, chart, 'demo', 'patients', {}, tmp.dir, cluster);
        assert.ok(!taken.ok && taken.error.includes(ours), `helm ${version}: ${taken.ok || taken.error}`);
        // Its own Services (an upgrade), and another namespace, are no collision.
        const own = { set: [['services.flask.aliases', null]] as Array<[string, unknown]> };
        const upgrade = await helmTemplate(helm[version]!, chart, 'demo', 'patients', own, tmp.dir, cluster);
        assert.ok(upgrade.ok, upgrade.ok ? '' : upgrade.error);
        const elsewhere = await helmTemplate(helm[version]!, chart, 'demo', 'clinic-2', {}, tmp.dir, cluster);
        assert.ok(elsewhere.ok, elsewhere.ok ? '' : elsewhere.error);
      }
    } finally {
      await cluster.close();
    }
  });
});
