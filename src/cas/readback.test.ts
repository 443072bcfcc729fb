import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { PolicyError, REDACTED, SECRET_FIELD_PATHS, parseSession, sessionHash } from '../policy/index.js';
import { generatePrivateKey, pemEncode } from '../secrets/index.js';
import { isAllowed } from './access.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { readSession, writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

const { store, ctx } = tempStore('veil-readback-');

const identity = clientIdentity;
const owner = identity('owner');
const other = identity('other');
const code = (c: string) => (e: CasError) => e.code === c;

/** A session with every field the schema marks as secret-bearing filled with a value of its own. */
function everySecretField(name: string): { text: string; values: string[] } {
  const session: Record<string, unknown> = {
    name,
    services: [{ name: 's', command: 'run' }],
    secrets: [{ name: 'pw', kind: 'ascii' }],
    security: { attestation: { mode: 'none' } },
  };
  const values: string[] = [];
  for (const path of SECRET_FIELD_PATHS) {
    const value = randomBytes(32).toString('hex');
    values.push(value);
    setAt(session, path, value);
  }
  return { text: stringify(session), values };
}

function setAt(at: Record<string, unknown>, path: readonly string[], value: string): void {
  const [step, ...rest] = path;
  if (rest.length === 0) {
    at[step!] = value;
    return;
  }
  if (rest[0] === '[]') {
    at[step!] ??= [{}];
    const list = at[step!] as Array<Record<string, unknown>>;
    setAt(list[0]!, rest.slice(1), value);
    return;
  }
  at[step!] ??= {};
  setAt(at[step!] as Record<string, unknown>, rest, value);
}

describe('read-back', () => {
  it('redacts every secret-bearing field the schema marks', async () => {
    const marked = SECRET_FIELD_PATHS.map((p) => p.join('.'));
    for (const known of ['secrets.[].value', 'services.[].fspf_key']) assert.ok(marked.includes(known), known);
    const { text, values } = everySecretField('all-fields');
    await writeSession(ctx, text, owner);
    const back = (await readSession(ctx, 'all-fields', undefined, owner)).session;
    for (const value of values) assert.ok(!back.includes(value), `a marked field came back in clear:\n${back}`);
    assert.equal(back.split(REDACTED).length - 1, SECRET_FIELD_PATHS.length);
  });

  it('never shows an explicit value: ascii, binary, private key', async () => {
    const pem = pemEncode('PRIVATE KEY', generatePrivateKey().pkcs8);
    const text = [
      'name: explicit',
      'secrets:',
      '  - {name: a, kind: ascii, value: "s3cr3t-ascii-value"}',
      '  - {name: b, kind: binary, value: "c0ffee00c0ffee"}',
      `  - {name: k, kind: private-key, value: ${JSON.stringify(pem)}}`,
      '',
    ].join('\n');
    await writeSession(ctx, text, owner);
    const back = (await readSession(ctx, 'explicit', undefined, owner)).session;
    for (const secret of ['s3cr3t-ascii-value', 'c0ffee00c0ffee', pem.split('\n')[1]!]) {
      assert.ok(!back.includes(secret), back);
    }
  });

  it('uploaded again as an update keeps the explicit values (read-modify-write)', async () => {
    const fspf = randomBytes(32).toString('hex');
    const text = [
      'name: round-trip',
      'services:',
      `  - {name: s, command: "run $$SCONE::a$$", fspf_path: /f, fspf_key: ${fspf}, fspf_tag: ${'a'.repeat(32)}}`,
      'secrets:',
      '  - {name: a, kind: ascii, value: "kept-across-updates"}',
      '  - {name: g, kind: ascii}',
      '',
    ].join('\n');
    await writeSession(ctx, text, owner);
    const before = (await store.current('round-trip'))!.secrets;
    const back = await readSession(ctx, 'round-trip', undefined, owner);
    const edited = `${back.session}predecessor: ${back.hash}\nversion: "0.3"\n`;
    const { hash } = await writeSession(ctx, edited, owner);
    assert.deepEqual((await store.current('round-trip'))!.secrets, before);
    const config = await renderConfig(store, 'round-trip', 's');
    assert.deepEqual(config.command, ['run', 'kept-across-updates']);
    assert.equal(config.fspf?.key, fspf);
    assert.equal((await readSession(ctx, 'round-trip', undefined, owner)).hash, hash);
  });

  it('refuses the placeholder where there is nothing to keep', async () => {
    const fresh = `name: fresh\nsecrets:\n  - {name: a, kind: ascii, value: "${REDACTED}"}\n`;
    await assert.rejects(
      writeSession(ctx, fresh, owner),
      (e: CasError) => e.code === 'CAS_POLICY_INVALID' && /secrets\[0\]\.value/.test(e.message),
    );
  });
});

describe("SCONE's read-back", () => {
  it('uploads unchanged (version: 0.3.10, predecessor: null, persistency: None, creator)', async () => {
    const text = readFileSync(new URL('../../testdata/scone/readback/redis-session.yaml', import.meta.url), 'utf8');
    const { hash } = await writeSession(ctx, text, owner);
    const back = await readSession(ctx, 'redis-session', undefined, owner);
    assert.equal(back.hash, hash);
    assert.match(back.session, /persistency: None/);
    // The creator is the uploader, whatever the read-back said.
    assert.ok(back.session.includes(owner.certPem.split('\n')[1]!), back.session);
  });
});

describe('hashes', () => {
  it('do not depend on explicit values, and the CAS agrees with the offline hash', async () => {
    const text = (v: string) => `name: hashed\nsecrets:\n  - {name: a, kind: ascii, value: "${v}"}\n`;
    assert.equal(
      sessionHash(parseSession(text('1234')), owner.keyHash),
      sessionHash(parseSession(text('9999')), owner.keyHash),
    );
    assert.equal(
      (await writeSession(ctx, text('1234'), owner)).hash,
      sessionHash(parseSession(text('1234')), owner.keyHash),
    );
  });

  it('still differ between versions that change only a value (each names its predecessor)', async () => {
    const h1 = (await store.current('hashed'))!.hash;
    const next = `name: hashed\npredecessor: ${h1}\nsecrets:\n  - {name: a, kind: ascii, value: "5678"}\n`;
    const h2 = (await writeSession(ctx, next, owner)).hash;
    assert.notEqual(h1, h2);
    assert.equal(((await store.current('hashed'))!.secrets['a'] as { value: string }).value, '5678');
  });

  it('are told only to clients that may update: a 409 never reaches a stranger', async () => {
    const { hash } = await writeSession(ctx, 'name: guarded\n', owner);
    const leaks = (e: CasError) => e.message.includes(hash) || (e.hint ?? '').includes(hash);
    for (const upload of ['name: guarded\n', `name: guarded\npredecessor: ${'a'.repeat(64)}\n`]) {
      await assert.rejects(writeSession(ctx, upload, other), (e: CasError) => e.code === 'CAS_FORBIDDEN' && !leaks(e));
      await assert.rejects(writeSession(ctx, upload, owner), (e: CasError) => e.status === 409 && leaks(e));
    }
  });
});

describe('read permission', () => {
  it('judges old versions by the current policy, before saying whether a version exists', async () => {
    const v1 = (await writeSession(ctx, `name: revoked\naccess_policy: {read: [CREATOR, ${other.keyHash}]}\n`, owner))
      .hash;
    assert.equal((await readSession(ctx, 'revoked', v1, other)).hash, v1);
    await writeSession(ctx, `name: revoked\npredecessor: ${v1}\naccess_policy: {read: [CREATOR]}\n`, owner);
    await assert.rejects(() => readSession(ctx, 'revoked', v1, other), code('CAS_FORBIDDEN'));
    await assert.rejects(() => readSession(ctx, 'revoked', 'f'.repeat(64), other), code('CAS_FORBIDDEN'));
    await assert.rejects(() => readSession(ctx, 'revoked', 'f'.repeat(64), owner), code('CAS_NOT_FOUND'));
    assert.equal((await readSession(ctx, 'revoked', v1, owner)).hash, v1);
  });

  it('NONE mixed with other entries is refused at upload, and denies even if it got through', async () => {
    const mixed = 'name: mixed\naccess_policy: {read: [NONE, CREATOR]}\n';
    await assert.rejects(writeSession(ctx, mixed, owner), code('CAS_POLICY_INVALID'));
    assert.throws(() => parseSession('name: mixed\naccess_policy: {update: [CREATOR, NONE]}\n'), PolicyError);
    assert.equal(isAllowed({ read: ['NONE', 'CREATOR'] }, 'read', owner, owner.certPem), false);
    assert.equal(isAllowed({ read: ['CREATOR', 'NONE', owner.keyHash] }, 'read', owner, owner.certPem), false);
    assert.equal(isAllowed({ update: ['NONE', 'ANY'] }, 'update', owner, owner.certPem), false);
  });
});
