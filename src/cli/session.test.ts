import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sameSession } from './commands/session.js';
import { chosenIdentity } from './home.js';
import { capture } from './test-io.js';
import { main } from './main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'testdata', 'scone', 'cli', 'session.yml');
const VARS = ['-e', 'SESSION=hello', '-e', `MRENCLAVE=${'a'.repeat(64)}`];

describe('veil session verify', () => {
  it('accepts the same hash and refuses another, naming both', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    assert.doesNotThrow(() => sameSession('s', 'f.yml', a, a));
    assert.throws(
      () => sameSession('s', 'f.yml', a, b),
      (err: Error & { code?: string }) =>
        err.code === 'CLI_SESSION_MISMATCH' &&
        err.message === `session 's' on the CAS (hash ${b}) is not the one in f.yml (hash ${a})`,
    );
  });
});

describe('veil session check FILE (offline, in-process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-session-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the file as an argument and leaves $VAR in YAML comments alone', async () => {
    const io = capture();
    assert.equal(await main(['session', 'check', FIXTURE, ...VARS], io), 0, io.stderr);
    assert.match(io.stdout, /session 'hello' in .*session\.yml is valid/);
  });

  it('refuses --cas offline, and a --identity that holds none (making none there)', async () => {
    const io = capture();
    assert.equal(await main(['session', 'calculate-hash', FIXTURE, ...VARS, '-c', 'cas:8081'], io), 2);
    assert.match(io.stderr, /^veil session calculate-hash: --cas is not supported by Veil here/);
    const nowhere = join(dir, 'nowhere');
    assert.throws(() => chosenIdentity(nowhere, {}), /--identity .* holds no identity\.key and identity\.crt/);
    assert.equal(existsSync(nowhere), false);
  });
});
