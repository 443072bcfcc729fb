import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWrittenSession, sessionHash } from '../policy/index.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { readSession, writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

const { store, ctx } = tempStore('veil-fragment-pins-');
const owner = clientIdentity('owner');
const mallory = clientIdentity('mallory');
const GOOD = 'a1'.repeat(32);
const EVIL = 'e1'.repeat(32);

/** The exporter's side: a key released only to the importer version it reviewed (a session_hash pin). */
const vault = (name: string, target: string, pin: string) =>
  `name: ${name}\nsecrets:\n  - {name: key, kind: private-key, export: [{session: ${target}, session_hash: ${pin}}]}\n`;

/** Mallory's importer: what may attest is a config-fragment, local (`fragment`) or imported. */
const app = (name: string, from: string, fragment: string) =>
  [
    `name: ${name}`,
    'services:',
    '  - {name: s, attestation: $$SCONE::att$$, command: run $$SCONE::key$$}',
    'secrets:',
    `  - {name: key, import: {session: ${from}, secret: key}}`,
    `  - ${fragment}`,
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');
const local = (mrenclave: string) => `{name: att, kind: config-fragment, value: {mrenclave: [${mrenclave}]}}`;
const IMPORTED = (from: string) => `{name: att, kind: config-fragment, import: {session: ${from}, secret: att}}`;
const fragmentSource = (name: string, target: string, mrenclave: string) =>
  `name: ${name}\nsecrets:\n  - {name: att, kind: config-fragment, value: {mrenclave: [${mrenclave}]}, ` +
  `export: [{session: ${target}}]}\n`;

const pinRefused = (e: CasError) => e.code === 'CAS_IMPORT_DENIED' && /session_hash pin must equal/.test(e.message);
const released = async (name: string) => /BEGIN PRIVATE KEY/.test((await renderConfig(store, name, 's')).command[1]!);

describe('a session_hash pin fixes the config-fragments of the importer', () => {
  it('local ones: the same text with another attestation fragment has another hash', async () => {
    const reviewed = app('app', 'vault', local(GOOD));
    const pin = sessionHash(parseWrittenSession(reviewed), mallory.keyHash); // veil session calculate-hash
    await writeSession(ctx, vault('vault', 'app', pin), owner);
    const evil = await writeSession(ctx, app('app', 'vault', local(EVIL)), mallory);
    assert.notEqual(evil.hash, pin);
    await assert.rejects(() => renderConfig(store, 'app', 's'), pinRefused);
    // The reviewed text gets the pinned hash (offline and CAS agree) and the key; its read-back stays redacted.
    const good = app('app-ok', 'vault-ok', local(GOOD));
    const goodPin = sessionHash(parseWrittenSession(good), mallory.keyHash);
    await writeSession(ctx, vault('vault-ok', 'app-ok', goodPin), owner);
    assert.equal((await writeSession(ctx, good, mallory)).hash, goodPin);
    assert.ok(await released('app-ok'));
    assert.doesNotMatch((await readSession(ctx, 'app-ok', undefined, mallory)).session, new RegExp(GOOD));
  });

  it('imported ones: the stored hash covers the value the CAS fetched', async () => {
    const text = app('app2', 'vault2', IMPORTED('att2'));
    const hashWith = (mrenclave: string) =>
      sessionHash(parseWrittenSession(text), mallory.keyHash, new Map([['att', { mrenclave: [mrenclave] }]]));
    await writeSession(ctx, vault('vault2', 'app2', hashWith(GOOD)), owner);
    // Mallory showed the fragment with GOOD, and serves EVIL when the importer is uploaded.
    await writeSession(ctx, fragmentSource('att2', 'app2', EVIL), mallory);
    const stored = await writeSession(ctx, text, mallory);
    assert.equal(stored.hash, hashWith(EVIL));
    await assert.rejects(() => renderConfig(store, 'app2', 's'), pinRefused);
    // With the reviewed value, the pin matches and releases the key.
    const good = app('app3', 'vault3', IMPORTED('att3'));
    const goodPin = sessionHash(parseWrittenSession(good), mallory.keyHash, new Map([['att', { mrenclave: [GOOD] }]]));
    await writeSession(ctx, vault('vault3', 'app3', goodPin), owner);
    await writeSession(ctx, fragmentSource('att3', 'app3', GOOD), mallory);
    assert.equal((await writeSession(ctx, good, mallory)).hash, goodPin);
    assert.ok(await released('app3'));
  });
});
