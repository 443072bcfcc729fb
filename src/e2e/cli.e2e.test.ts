import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, opensslIdentity, startCas, tempDir, veil, type CasProcess } from './harness.js';

describe('veil CLI against a running CAS', () => {
  const dir = tempDir();
  const env = { VEIL_HOME: join(dir.path, 'home') };
  let cas: CasProcess;
  let other: CasProcess;
  const suffix = randomBytes(3).toString('hex');
  const vars = [
    '-e',
    `FLASK_SESSION=cli-flask-${suffix}`,
    '-e',
    `REDIS_SESSION=cli-redis-${suffix}`,
    '-e',
    `MRENCLAVE=${'a'.repeat(64)}`,
    '-e',
    `SCONE_FSPF_KEY=${'b'.repeat(64)}`,
    '-e',
    `SCONE_FSPF_TAG=${'c'.repeat(32)}`,
  ];
  const policy = (which: string) => join(ROOT, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`);

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    other = await startCas(join(dir.path, 'other'), dir.path);
  });
  after(async () => {
    await cas?.stop();
    await other?.stop();
    dir.cleanup();
  });

  it('refuses to attest without a fingerprint, and with the wrong one', async () => {
    const none = await veil(['cas', 'attest', cas.url], env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /fingerprint/);
    const impostor = await veil(['cas', 'attest', other.url, '-c', cas.fingerprint], env);
    assert.equal(impostor.code, 1);
    assert.match(impostor.stderr, /RUNTIME_CAS_UNTRUSTED/);
  });

  it('refuses to talk to a CAS that was not attested', async () => {
    const r = await veil(['session', 'read', 'x', '--cas', other.url], env);
    assert.match(r.stderr, /CLI_NOT_ATTESTED/);
  });

  it('attests by fingerprint and keeps the key of its identity private', async () => {
    const r = await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is trustworthy/);
    assert.match(
      r.stdout,
      /no TEE evidence: this CAS runs without a TEE and is trusted only by the CA fingerprint you gave/,
    );
    const self = await veil(['self', 'show'], env);
    assert.match(self.stdout, /key hash: [0-9a-f]{64}/);
    assert.equal(statSync(join(env.VEIL_HOME, 'identity.key')).mode & 0o077, 0);
  });

  it("prints this host's platform ID, the same every time, from a private host key", async () => {
    const id = await veil(['host', 'id'], env);
    assert.equal(id.code, 0, id.stderr);
    assert.match(id.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal((await veil(['host', 'id'], env)).stdout, id.stdout);
    const show = await veil(['host', 'show'], env);
    assert.ok(
      show.stdout.includes(
        `platform id: ${id.stdout.trim()}\nhost key: ${join(env.VEIL_HOME, 'host', 'host-key.pem')}\n`,
      ),
    );
    assert.equal(statSync(join(env.VEIL_HOME, 'host', 'host-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(env.VEIL_HOME, 'host')).mode & 0o777, 0o700);
    const bad = await veil(['host', 'nope'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /veil host id/);
  });

  it('creates, reads and updates sessions; calculate-hash agrees with the CAS', async () => {
    const redis = await veil(['session', 'create', '-f', policy('redis'), ...vars], env);
    assert.equal(redis.code, 0, redis.stderr);
    const flask = await veil(['session', 'create', '-f', policy('flask'), ...vars], env);
    assert.equal(flask.code, 0, flask.stderr);
    const offline = await veil(['session', 'calculate-hash', '-f', policy('flask'), ...vars], env);
    assert.equal(offline.stdout.trim(), flask.stdout.trim());
    // Another creator's session of the same text has another hash: name it with --creator.
    const other = await opensslIdentity(dir.path, 'other');
    const theirs = await veil(
      ['session', 'calculate-hash', '-f', policy('flask'), '--creator', other.cert, ...vars],
      env,
    );
    assert.equal(theirs.code, 0, theirs.stderr);
    assert.notEqual(theirs.stdout.trim(), flask.stdout.trim());

    const read = await veil(['session', 'read', `cli-flask-${suffix}`], env);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /name: cli-flask-/);

    const updated = await veil(['session', 'update', '-f', policy('flask'), ...vars], env);
    assert.equal(updated.code, 0, updated.stderr);
    assert.notEqual(updated.stdout.trim(), flask.stdout.trim());
    const again = await veil(['session', 'create', '-f', policy('flask'), ...vars], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /CAS_SESSION_EXISTS/);
    assert.match(again.stderr, /veil session update/);
  });

  it('fills $VAR templates from the environment with --use-env, and names every missing one', async () => {
    const file = join(dir.path, 'templ.yaml');
    writeFileSync(
      file,
      'name: $NAME\nversion: "0.3"\nservices:\n  - name: s\n    command: echo $$SCONE::pw$$ $OTHER\nsecrets:\n  - {name: pw, kind: ascii}\n',
    );
    const missing = await veil(['session', 'check', '-f', file], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\$NAME/);
    assert.match(missing.stderr, /\$OTHER/);
    const ok = await veil(['session', 'check', '-f', file, '--use-env'], {
      ...env,
      NAME: `templ-${suffix}`,
      OTHER: 'x',
    });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('reports a bad session with file, line and field path', async () => {
    const file = join(dir.path, 'bad.yaml');
    writeFileSync(
      file,
      'name: bad\nversion: "0.3"\nsecrets:\n  - name: c\n    kind: x509\n    issuer: nowhere\n    private_key: k\n  - {name: k, kind: private-key}\n',
    );
    const r = await veil(['session', 'check', '-f', file], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:6:\d+: secrets\[0\]\.issuer: no secret named 'nowhere'/);
  });

  it('measures programs: stable for one, different for another', async () => {
    const a = await veil(['measure', 'sh'], env);
    const b = await veil(['measure', 'sh'], env);
    const c = await veil(['measure', 'openssl'], env);
    assert.match(a.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal(a.stdout, b.stdout);
    assert.notEqual(a.stdout, c.stdout);
  });

  it('answers unknown commands and flags with usage errors', async () => {
    assert.equal((await veil(['frobnicate'], env)).code, 2);
    assert.equal((await veil(['session', 'create', '--bogus'], env)).code, 2);
    const chart = await veil(['cas', 'chart', '--foo'], env);
    assert.equal(chart.code, 2);
    assert.equal(chart.stderr.split('\n')[0], "veil cas chart: unknown option '--foo' — run 'veil cas chart --help'");
    const help = await veil(['cas', 'chart', '--help'], env);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: veil cas chart --image IMAGE/);
  });
});
