import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ephemeral } from '../cas/testing.js';
import { parseWrittenSession, sessionHash } from '../policy/index.js';
import { identityFromPem } from '../cas/identity-of.js';
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

  it('calculates the hash with local config-fragment values, and refuses one only the CAS can know', async () => {
    const creator = join(dir, 'creator.crt');
    const { certPem } = ephemeral();
    writeFileSync(creator, certPem);
    const frag = (value: string) =>
      `name: f\nsecurity: $$SCONE::sec$$\nsecrets: [{name: sec, kind: config-fragment, ${value}}]\n`;
    const hashOf = async (text: string, ...flags: string[]) => {
      const file = join(dir, 'frag.yml');
      writeFileSync(file, text);
      const io = capture();
      const code = await main(['session', 'calculate-hash', file, '--creator', creator, ...flags], io);
      return { code, out: io.stdout.trim(), err: io.stderr };
    };
    const local = frag('value: {attestation: {mode: none}}');
    const expected = sessionHash(parseWrittenSession(local), identityFromPem(certPem).keyHash);
    assert.deepEqual(await hashOf(local), { code: 0, out: expected, err: '' });
    const imported = await hashOf(frag('import: {session: other, secret: sec}'));
    assert.equal(imported.code, 1);
    assert.match(imported.err, /imports config-fragments: its hash covers their values, which only the CAS fetches/);
    // The hash a config-fragment export pins: the text's, since fragment imports are judged before their values.
    const importing = frag('import: {session: other, secret: sec}');
    const textHash = sessionHash(parseWrittenSession(importing), identityFromPem(certPem).keyHash);
    assert.deepEqual(await hashOf(importing, '--for-fragment-exports'), { code: 0, out: textHash, err: '' });
    const redacted = await hashOf(frag("value: '<redacted>'"));
    assert.match(redacted.err, /config-fragment 'sec' .* is '<redacted>': the hash covers its value/);
  });
});
