import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, startCas, tempDir, veil, type CasProcess } from './harness.js';

/** `veil session …` as SCONE's documents call `scone session …`: the file as an argument, §5's common options. */
describe('veil session with the scone CLI command line', () => {
  const dir = tempDir();
  const env = { VEIL_HOME: join(dir.path, 'home') };
  const fixture = join(ROOT, 'testdata', 'scone', 'cli', 'session.yml');
  const name = `hello-${randomBytes(3).toString('hex')}`;
  const vars = ['-e', `SESSION=${name}`, '-e', `MRENCLAVE=${'a'.repeat(64)}`];
  let cas: CasProcess;

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    assert.equal((await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], env)).code, 0);
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('creates and updates FILE given as an argument; $VAR in a comment is not a variable', async () => {
    const created = await veil(['session', 'create', fixture, ...vars, '-c', cas.url], env);
    assert.equal(created.code, 0, created.stderr);
    const offline = await veil(['session', 'calculate-hash', fixture, ...vars], env);
    assert.equal(offline.stdout, created.stdout);
    const updated = await veil(['session', 'update', fixture, ...vars, '--cas', cas.url], env);
    assert.equal(updated.code, 0, updated.stderr);
    assert.notEqual(updated.stdout, created.stdout);
  });

  it('verifies that the CAS holds the session in FILE, and says so when it does not', async () => {
    const ok = await veil(['session', 'verify', fixture, ...vars], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`session '${name}' on the CAS is the one in`));
    const changed = join(dir.path, 'changed.yml');
    writeFileSync(changed, readFileSync(fixture, 'utf8').replace('size: 16', 'size: 17'));
    const differs = await veil(['session', 'verify', changed, ...vars], env);
    assert.equal(differs.code, 1);
    assert.match(differs.stderr, /CLI_SESSION_MISMATCH/);
    assert.match(differs.stderr, new RegExp(`session '${name}' on the CAS \\(hash [0-9a-f]{64}\\) is not the one`));
  });

  it('reads by -n/--name, renames with -n, and refuses what cannot apply by name', async () => {
    const read = await veil(['session', 'read', '-n', name], env);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /size: 16/);
    const renamed = await veil(['session', 'check', fixture, ...vars, '-n', 'other-name', '--fail-on-warning'], env);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.match(renamed.stdout, /session 'other-name'/);
    const offlineCas = await veil(['session', 'check', fixture, ...vars, '--cas', cas.url], env);
    assert.equal(offlineCas.code, 2);
    assert.match(offlineCas.stderr, /^veil session check: --cas is not supported by Veil here/);
    const noVerify = await veil(
      ['session', 'create', fixture, ...vars, '--only_for_testing-disable-attestation-verification'],
      env,
    );
    assert.equal(noVerify.code, 2);
    assert.match(noVerify.stderr, /not supported by Veil/);
    const identity = await veil(['session', 'read', name, '--identity', join(dir.path, 'nowhere')], env);
    assert.equal(identity.code, 2);
    assert.match(identity.stderr, /--identity .* holds no identity\.key/);
    const twice = await veil(['session', 'check', fixture, '-f', fixture, ...vars], env);
    assert.equal(twice.code, 2);
  });
});
