import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

/**
 * Exports by name trust an importer only when everyone who may update it is trusted: governance entries too.
 * A signer names no identity the exporter's policy could trust; a group is trusted when it cannot be met
 * without a trusted member.
 */
const { store, ctx } = tempStore('veil-governed-exports-');
const [owner, stranger] = [clientIdentity('owner'), clientIdentity('stranger')];
const signerPem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
const signer = `{signer: ${JSON.stringify(signerPem)}}`;

const exporter = (name: string, target: string) =>
  `name: ${name}\nsecrets:\n  - {name: k, kind: private-key, export: [{session: ${target}}]}\n`;
const CERT = '  - {name: ck, kind: private-key}\n  - {name: c, kind: x509, private_key: ck}';
const importer = (name: string, from: string, update: string) =>
  [
    `name: ${name}`,
    `access_policy: {update: ${update}}`,
    'services:',
    '  - name: s',
    '    command: run $$SCONE::key$$',
    'secrets:',
    `  - {name: key, import: {session: ${from}, secret: k}}`,
    CERT,
    '',
  ].join('\n');

const denied = (e: CasError) => e.code === 'CAS_IMPORT_DENIED';
let n = 0;
async function released(update: string): Promise<boolean> {
  n++;
  await writeSession(ctx, exporter(`exp${n}`, `imp${n}`), owner);
  await writeSession(ctx, importer(`imp${n}`, `exp${n}`, update), owner);
  try {
    return /BEGIN PRIVATE KEY/.test((await renderConfig(store, `imp${n}`, 's')).command[1] ?? '');
  } catch (err) {
    assert.ok(denied(err as CasError), String(err));
    return false;
  }
}

describe('exports to governed importers', () => {
  it('does not trust an importer a signer may update alone', async () => {
    assert.equal(await released(`[CREATOR, ${signer}]`), false);
    assert.equal(await released('[CREATOR, "$$SCONE::c$$"]'), false, 'a certificate secret: whoever holds its key');
  });

  it('trusts require-all with a trusted member, not require-at-least-N that untrusted members meet', async () => {
    assert.equal(await released(`[{require-all: [CREATOR, ${signer}]}]`), true);
    assert.equal(await released(`[{require-at-least-1: [CREATOR, ${signer}]}]`), false);
    assert.equal(await released(`[{require-at-least-2: [CREATOR, ${stranger.keyHash}, ${signer}]}]`), false);
    assert.equal(await released(`[{require-at-least-2: [CREATOR, ${owner.keyHash}, ${signer}]}]`), true);
  });
});
