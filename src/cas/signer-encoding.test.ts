import assert from 'node:assert/strict';
import { ECDH, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { signatureOver } from '../cli/session-signing.js';
import type { CasError } from './errors.js';
import { writeSession, writeUpload } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

/** One EC key has two SPKI encodings (point compressed or not); it must stay one identity in governance. */
const { ctx } = tempStore('veil-signer-enc-');
const alice = clientIdentity('alice');

const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const pkcs8 = (key: ReturnType<typeof ecKey>) => key.export({ type: 'pkcs8', format: 'pem' }).toString();

/** The same public key as a SubjectPublicKeyInfo PEM with its point compressed (which Node re-exports as is). */
function compressedPem(privatePem: string): string {
  const der = createPublicKey(privatePem).export({ type: 'spki', format: 'der' });
  const point = ECDH.convertKey(der.subarray(der.length - 65), 'prime256v1', undefined, undefined, 'compressed');
  const algId = der.subarray(2, 23);
  const bits = Buffer.concat([Buffer.from([0x03, point.length + 1, 0]), point as Buffer]);
  const spki = Buffer.concat([Buffer.from([0x30, algId.length + bits.length]), algId, bits]);
  const compressed = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  assert.equal(compressed.export({ type: 'spki', format: 'der' }).length, 59);
  return compressed.export({ type: 'spki', format: 'pem' }).toString();
}

const uncompressedPem = (privatePem: string) => signatureOver('x', 'x', privatePem).signer;
const indent = (pem: string) =>
  pem
    .trim()
    .split('\n')
    .map((l) => `            ${l}`)
    .join('\n');
const governed = (name: string, pems: string[], predecessor?: string) =>
  [
    `name: ${name}`,
    ...(predecessor ? [`predecessor: ${predecessor}`, 'services: []'] : []),
    'access_policy:',
    '  read: [ANY]',
    '  update:',
    '    - require-at-least-2:',
    ...pems.map((p) => `        - signer: |\n${indent(p)}`),
    '',
  ].join('\n');

describe('signer keys of either EC point encoding', () => {
  const [k1, k2] = [pkcs8(ecKey()), pkcs8(ecKey())];

  it('counts one key in both encodings as one identity: the group naming it twice is refused', async () => {
    const text = governed('twice', [uncompressedPem(k1), compressedPem(k1)]);
    await assert.rejects(
      writeSession(ctx, text, alice),
      (e: CasError) => e.code === 'CAS_POLICY_INVALID' && /same identity twice/.test(e.message),
    );
  });

  it('takes a signature whose signer PEM is compressed for the key the policy names uncompressed', async () => {
    const v1 = await writeSession(ctx, governed('either', [uncompressedPem(k1), uncompressedPem(k2)]), alice);
    const next = governed('either', [uncompressedPem(k1), uncompressedPem(k2)], v1.hash);
    const signatures = [
      { ...signatureOver(next, 'either', k1), signer: compressedPem(k1) },
      signatureOver(next, 'either', k2),
    ];
    const written = await writeUpload(ctx, { text: next, signatures }, alice);
    assert.equal(written.created, false);
  });

  it('does not count two signatures by one key under its two encodings as two', async () => {
    const v1 = await writeSession(ctx, governed('one-key', [compressedPem(k1), uncompressedPem(k2)]), alice);
    const next = governed('one-key', [compressedPem(k1), uncompressedPem(k2)], v1.hash);
    const sig = signatureOver(next, 'one-key', k1);
    const signatures = [sig, { ...sig, signer: compressedPem(k1) }];
    await assert.rejects(
      writeUpload(ctx, { text: next, signatures }, alice),
      (e: CasError) => e.code === 'CAS_SIGNATURES_MISSING' && /1 more/.test(e.message),
    );
  });
});
