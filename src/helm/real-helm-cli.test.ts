import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.js';
import { capture } from '../cli/test-io.js';
import { HELM_VERSIONS, documents, helmBinaries, helmTemplate, lint, scratch, sorted } from './helm-kit.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples', 'flask-redis');

/** The charts and manifests the commands write, as users get them, through the real Helm. */
describe('veil apply and veil cas chart, with the real Helm 3 and Helm 4', () => {
  const tmp = scratch();
  const target = join(tmp.dir, 'target');
  const env = { VEIL_HOME: join(tmp.dir, 'home'), PATH: process.env['PATH'] };
  let helm: Record<string, string>;
  let applied: ReturnType<typeof capture>;
  before(async () => {
    helm = await helmBinaries();
    for (const s of ['flask', 'redis']) {
      const io = capture(env);
      const code = await main(['apply', '-f', join(EXAMPLE, s, 'service.yaml'), '--no-image', '-t', target], io);
      assert.equal(code, 0, io.stderr);
    }
    applied = capture(env);
    const args = ['apply', '-f', join(EXAMPLE, 'mesh.yaml'), '-t', target, '--dry-run', '-o', 'yaml'];
    assert.equal(await main([...args, '--release', 'demo'], applied), 0, applied.stderr);
  });
  after(() => tmp.remove());

  it("refuses a --release Kubernetes' names cannot carry, before anything is written or uploaded", async () => {
    for (const release of ['Demo_1', 'a.b', '1demo', `r${'x'.repeat(53)}`, '']) {
      const io = capture(env);
      const code = await main(
        ['apply', '-f', join(EXAMPLE, 'mesh.yaml'), '-t', join(tmp.dir, 'no'), '--release', release],
        io,
      );
      assert.equal(code, 1, `${release}: ${io.stderr}`);
      assert.match(
        io.stderr,
        /release name .* is refused: .*DNS-1035[\s\S]*→ use lower-case[\s\S]*\[HELM_RELEASE_NAME\]/,
      );
      assert.equal(io.stdout, '', 'nothing applied');
      const cas = capture(env);
      const chart = ['cas', 'chart', '--image', 'r/cas:1', '-o', join(tmp.dir, 'no-cas'), '--release', release];
      assert.equal(await main(chart, cas), 1, cas.stderr);
      assert.match(cas.stderr, /\[HELM_RELEASE_NAME\]/);
    }
  });

  it('gives the pods the CAS Service, not the loopback address of the mesh, and says so', () => {
    assert.match(applied.stderr, /WARNING\] the mesh's CAS address localhost:8081 is loopback.*veil-cas:8081/);
    const manifests = readFileSync(join(target, 'manifests', 'flask.yaml'), 'utf8');
    assert.match(manifests, /name: SCONE_CAS_ADDR\n\s+value: veil-cas:8081\n/);
  });

  it('says with -o yaml that kubectl apply has no alias guard, and labels alias Services with the release', () => {
    assert.match(
      applied.stderr,
      /NOTE\] alias Services .*redis.* take it over unchecked.*kubectl get service .*redis.* -L app\.kubernetes\.io\/instance/,
    );
    const services = readdirSync(join(target, 'manifests'))
      .flatMap((f) => documents(readFileSync(join(target, 'manifests', f), 'utf8')))
      .filter((d) => d['kind'] === 'Service');
    const labels = services.map((d) => (d['metadata'] as { labels: Record<string, string> }).labels);
    assert.ok(services.length >= 3);
    for (const l of labels) assert.equal(l['app.kubernetes.io/instance'], 'demo');
  });

  it('writes a chart that helm lints and renders into exactly the manifests -o yaml wrote', async () => {
    const written = sorted(
      readdirSync(join(target, 'manifests')).flatMap((f) =>
        documents(readFileSync(join(target, 'manifests', f), 'utf8')),
      ),
    );
    assert.ok(written.length >= 5);
    for (const version of HELM_VERSIONS) {
      const checked = await lint(helm[version]!, join(target, 'helm'));
      assert.ok(checked.ok, `helm ${version}: ${checked.output}`);
      const real = await helmTemplate(helm[version]!, join(target, 'helm'), 'demo', 'patients', {}, tmp.dir);
      assert.ok(real.ok, real.ok ? '' : real.error);
      if (real.ok) assert.deepEqual(sorted(real.docs), written, `helm ${version}`);
    }
  });

  it('writes a CAS chart that helm renders into exactly the manifests --yaml wrote', async () => {
    const io = capture(env);
    const chart = join(tmp.dir, 'cas-chart');
    const args = ['cas', 'chart', '--image', 'r/cas:1', '-o', chart, '--yaml', join(tmp.dir, 'cas-yaml')];
    assert.equal(await main([...args, '--release', 'trust', '--namespace', 'veil-system'], io), 0, io.stderr);
    const written = sorted(documents(readFileSync(join(tmp.dir, 'cas-yaml', 'cas.yaml'), 'utf8')));
    for (const version of HELM_VERSIONS) {
      const real = await helmTemplate(helm[version]!, chart, 'trust', 'veil-system', {}, tmp.dir);
      assert.ok(real.ok, real.ok ? '' : real.error);
      if (real.ok) assert.deepEqual(sorted(real.docs), written, `helm ${version}`);
    }
  });
});
