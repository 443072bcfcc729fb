import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { RuntimeError } from './errors.js';
import { hostKeyPath, loadHostKey } from './host-key.js';

const exec = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'veil-hostkey-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh key path in a fresh 0700 directory. */
const fresh = () => join(root, `h${n++}`, 'host-key.pem');
const refused = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof RuntimeError, String(err));
  assert.equal(err.code, 'RUNTIME_HOST_KEY');
  assert.match(err.message, pattern);
  assert.ok(err.hint);
  return true;
};

describe('the host key', () => {
  it('lives at $VEIL_HOST_KEY, else $VEIL_HOME/host/host-key.pem', () => {
    assert.equal(hostKeyPath({ VEIL_HOST_KEY: '/k/key.pem', VEIL_HOME: '/h' }), '/k/key.pem');
    assert.equal(hostKeyPath({ VEIL_HOME: '/h' }), '/h/host/host-key.pem');
  });

  it('is made on first use: Ed25519, the file 0600 in a 0700 directory, and the same key afterwards', async () => {
    const path = fresh();
    const key = await loadHostKey(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    assert.equal(key.id, createHash('sha256').update(key.spki).digest('hex'));
    assert.equal((await loadHostKey(path)).id, key.id);
    assert.deepEqual(readdirSync(join(path, '..')), ['host-key.pem'], 'no temporary file is left behind');
  });

  it('refuses a key file that group or others may access', async () => {
    const path = fresh();
    await loadHostKey(path);
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(path, mode);
      await assert.rejects(
        loadHostKey(path),
        refused(new RegExp(`host key file .* accessible by group or others \\(mode 0${mode.toString(8)}\\)`)),
      );
    }
  });

  it('refuses a key directory that group or others may access', async () => {
    const path = fresh();
    await loadHostKey(path);
    chmodSync(join(path, '..'), 0o755);
    await assert.rejects(
      loadHostKey(path),
      refused(/host key directory .* accessible by group or others \(mode 0755\)/),
    );
  });

  it('refuses a symbolic link, a key of another type, and a file owned by another user', async () => {
    const target = fresh();
    await loadHostKey(target);
    const link = fresh();
    mkdirSync(join(link, '..'), { mode: 0o700 });
    symlinkSync(target, link);
    await assert.rejects(loadHostKey(link), refused(/cannot open the host key/));
    const p256 = fresh();
    mkdirSync(join(p256, '..'), { mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(p256, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await assert.rejects(loadHostKey(p256), refused(/is ec, not Ed25519/));
    if (process.getuid?.() === 0) {
      const theirs = fresh();
      await loadHostKey(theirs);
      chownSync(theirs, 65534, 65534);
      await assert.rejects(loadHostKey(theirs), refused(/belongs to uid 65534/));
    }
  });

  it('made by many at once (in this process and in others), is one key', async () => {
    const path = fresh();
    const local = await Promise.all(Array.from({ length: 32 }, () => loadHostKey(path)));
    assert.equal(new Set(local.map((k) => k.id)).size, 1);
    const other = fresh();
    const module = fileURLToPath(new URL('./host-key.js', import.meta.url));
    const script =
      `const { loadHostKey } = await import(${JSON.stringify(module)}); ` +
      `const ks = await Promise.all(Array.from({ length: 8 }, () => loadHostKey(${JSON.stringify(other)}))); ` +
      'console.log([...new Set(ks.map((k) => k.id))].join(","));';
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => exec(process.execPath, ['--input-type=module', '-e', script])),
    );
    const ids = new Set(runs.map((r) => r.stdout.trim()));
    assert.equal(ids.size, 1, [...ids].join(' '));
    assert.match([...ids][0]!, /^[0-9a-f]{64}$/);
    assert.equal((await loadHostKey(other)).id, [...ids][0]);
    assert.deepEqual(readdirSync(join(other, '..')), ['host-key.pem']);
  });
});
