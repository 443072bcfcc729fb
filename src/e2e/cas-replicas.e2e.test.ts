import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { opensslIdentity, simulationHost, tempDir, veil } from './harness.js';
import { startPostgres, type Postgres } from './postgres.js';
import { CasHttp, lostWrites, sessionText, startReplicas, writeThrough, type ReplicaSet } from './replicas.js';

/** Three `veil cas serve --store postgres://…` processes on one real PostgreSQL database. */
describe('CAS replicas on PostgreSQL', () => {
  const dir = tempDir('veil-replicas-');
  const keyFile = join(dir.path, 'master.key');
  let pgServer: Postgres;
  let set: ReplicaSet;
  let http: CasHttp;
  let me: { cert: string; key: string };

  before(async () => {
    writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    pgServer = await startPostgres();
    const url = await pgServer.createDatabase('cas');
    set = await startReplicas(3, { url, keyFile, dir: dir.path, env: pgServer.env() });
    me = await opensslIdentity(dir.path, 'me');
    http = new CasHttp(set.replicas[0]!.caFile, me);
  });
  after(async () => {
    await http?.close();
    await set?.stop();
    await pgServer?.stop();
    dir.cleanup();
  });

  it('share one CA, and are ready while their database answers', async () => {
    const fingerprints = new Set(set.replicas.map((r) => r.fingerprint));
    assert.equal(fingerprints.size, 1, 'one CAS identity behind one Service name');
    for (const r of set.replicas) {
      const ready = await http.send(`${r.url}/v1/health/ready`, 'GET');
      assert.deepEqual([ready.status, ready.json], [200, { ready: true }]);
    }
  });

  it('show a session created through one through every other at once', async () => {
    const [first, ...others] = set.replicas;
    const created = await http.send(`${first!.url}/v1/sessions`, 'POST', sessionText('shared', 'one'));
    assert.equal(created.status, 201, JSON.stringify(created.json));
    for (const r of others) {
      const read = await http.send(`${r.url}/v1/sessions/shared`, 'GET');
      assert.equal(read.json.hash, created.json.hash);
      const listed = await http.send(`${r.url}/v1/sessions`, 'GET');
      assert.ok(listed.json.sessions.some((s: { name: string }) => s.name === 'shared'));
    }
  });

  it('let exactly one of two concurrent updates with the same predecessor through two replicas win', async () => {
    const [a, b] = set.replicas;
    let head = (await http.send(`${a!.url}/v1/sessions`, 'POST', sessionText('raced', 'v0'))).json.hash as string;
    const rounds = 8;
    for (let round = 1; round <= rounds; round++) {
      const answers = await Promise.all([
        http.send(`${a!.url}/v1/sessions`, 'POST', sessionText('raced', `a${round}`, head)),
        http.send(`${b!.url}/v1/sessions`, 'POST', sessionText('raced', `b${round}`, head)),
      ]);
      // An update answers 200 (a create 201).
      const won = answers.filter((x) => x.status === 200);
      const lost = answers.filter((x) => x.status === 409);
      assert.equal(won.length, 1, JSON.stringify(answers));
      assert.equal(lost[0]?.json.error.code, 'CAS_STALE_PREDECESSOR');
      assert.ok(lost[0]?.json.error.message.includes(won[0]!.json.hash), 'the loser learns the new hash');
      head = won[0]!.json.hash;
    }
    console.log(`# ${rounds} races: ${rounds} won (200), ${rounds} refused (409 CAS_STALE_PREDECESSOR)`);
  });

  it('attest and configure a program (simulation evidence) on every replica', async () => {
    const host = await simulationHost(dir.path);
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    const policy = [
      'name: attested',
      'version: "0.3"',
      'services:',
      '  - name: sh',
      `    mrenclaves: [${measurement}]`,
      `    platforms: [${host.id}]`,
      '    command: [sh, -c, "echo PW=$PW"]',
      '    environment: {PW: "$$SCONE::pw$$"}',
      `    pwd: ${dir.path}`,
      'secrets:',
      '  - {name: pw, kind: ascii, value: from-the-shared-store}',
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');
    const created = await http.send(`${set.replicas[1]!.url}/v1/sessions`, 'POST', policy);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    for (const r of set.replicas) {
      const run = await veil(['run', '--mode', 'debug', '--', 'sh'], {
        ...host.env,
        SCONE_CONFIG_ID: 'attested/sh',
        SCONE_CAS_ADDR: new URL(r.url).host,
        VEIL_CAS_FINGERPRINT: r.fingerprint,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /PW=from-the-shared-store/);
    }
    console.log(`# attested on ${set.replicas.length} of ${set.replicas.length} replicas`);
  });

  it('lose no acknowledged write when a replica is killed (-9) during writes through all of them', async () => {
    const victim = set.replicas[2]!;
    const started = Date.now();
    let killed = false;
    const writing = writeThrough(http, () => set.replicas, {
      writers: 6,
      prefix: 'kill',
      until: () => Date.now() - started > 3_000,
    });
    await new Promise((r) => setTimeout(r, 1_200));
    await victim.stop('SIGKILL');
    killed = true;
    const counts = await writing;
    assert.ok(killed);
    const lost = await lostWrites(http, set.replicas[0]!, counts.acknowledged);
    console.log(
      `# acknowledged ${counts.acknowledged.size}, lost ${lost.length}, retried ${counts.retries}, ` +
        `unknown outcome then found ${counts.unknownOutcome}`,
    );
    assert.deepEqual(lost, []);
    assert.ok(counts.acknowledged.size > 20, 'writes went on');
  });
});
