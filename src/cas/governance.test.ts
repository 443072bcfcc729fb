import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { uploadMessage, type UploadSignature } from '../contract/index.js';
import { accessEntries, type AccessEntry } from '../policy/index.js';
import { isAllowed } from './access.js';
import type { CasError } from './errors.js';
import { admits, namedSigners, shortfall, type Owner } from './governance.js';
import type { ClientIdentity } from './identity-of.js';
import { verifiedSigners } from './signatures.js';
import { clientIdentity } from './test-store.js';

/** Governance semantics (governance.ts) and signature checks (signatures.ts), rule by rule. */
interface Signer {
  pem: string;
  hash: string;
  key: KeyObject;
  digest: string | null;
}

function signer(type: 'ed25519' | 'ec' | 'rsa', options: object = {}, digest: string | null = null): Signer {
  const { publicKey, privateKey } = generateKeyPairSync(type as 'ed25519', options);
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { pem, hash: createHash('sha256').update(der).digest('hex'), key: privateKey, digest };
}

const [a, b, c] = [signer('ed25519'), signer('ed25519'), signer('ed25519')];
const p256 = signer('ec', { namedCurve: 'P-256' }, 'sha256');
const p384 = signer('ec', { namedCurve: 'P-384' }, 'sha384');
const rsa = signer('rsa', { modulusLength: 2048 }, 'sha256');

const sigBy = (s: Signer, name: string, text: string): UploadSignature => ({
  signer: s.pem,
  signature: sign(s.digest, uploadMessage(name, text), { key: s.key, dsaEncoding: 'der' }).toString('base64'),
});

const alice = clientIdentity('alice');
const bob = clientIdentity('bob');
const owner = (creator: ClientIdentity = alice, certs: Record<string, string> = {}): Owner => ({
  creatorKeyHash: () => creator.keyHash,
  certificateKeyHash: (name) => certs[name],
});
const entries = (list: unknown[]): AccessEntry[] => accessEntries(list, 'update');
const atLeast2 = entries([{ 'require-at-least-2': [{ signer: a.pem }, { signer: b.pem }, { signer: c.pem }] }]);
const admitted = (list: AccessEntry[], signers: string[], client?: ClientIdentity, o = owner()) =>
  admits(list, { client, signers }, o);

describe('governance: which requests a list admits', () => {
  it('require-at-least-2 of three signers: every subset of two or three, never fewer', () => {
    const all = [a.hash, b.hash, c.hash];
    for (let mask = 0; mask < 8; mask++) {
      const signed = all.filter((_, i) => mask & (1 << i));
      assert.equal(admitted(atLeast2, signed), signed.length >= 2, `signed by ${signed.length}`);
    }
  });

  it('require-all needs every member; a TLS member needs that client', () => {
    const list = entries([{ 'require-all': [bob.keyHash, { signer: a.pem }] }]);
    assert.equal(admitted(list, [a.hash], bob), true);
    assert.equal(admitted(list, [a.hash], alice), false, 'the wrong client');
    assert.equal(admitted(list, [], bob), false, 'no signature');
    assert.equal(admitted(list, [b.hash], bob), false, 'another signer');
  });

  it('the list is an OR: CREATOR alone, or a signer alone', () => {
    const list = entries(['CREATOR', { signer: a.pem }]);
    assert.equal(admitted(list, [], alice), true);
    assert.equal(admitted(list, [a.hash], bob), true);
    assert.equal(admitted(list, [b.hash], bob), false);
    assert.equal(admitted(list, [], undefined), false);
  });

  it('counts duplicates once: one signer twice, or one key as both the TLS client and a signer', () => {
    assert.equal(admitted(atLeast2, [a.hash, a.hash]), false);
    assert.equal(admitted(atLeast2, [a.hash, a.hash.toUpperCase()]), false, 'hex case does not make a key twice');
    const sameKey: ClientIdentity = { certPem: '', keyHash: a.hash, spki: Buffer.alloc(0) };
    const mixed = entries([{ 'require-at-least-2': ['CREATOR', { signer: a.pem }] }]);
    assert.equal(admitted(mixed, [a.hash], sameKey, owner(sameKey)), false, 'the creator signing as a.pem');
    assert.equal(admitted(mixed, [a.hash], alice), true, 'the creator and another signer');
  });

  it('$$SCONE::name$$ admits the client holding the key of that certificate', () => {
    const list = accessEntries(['$$SCONE::admin$$'], 'read');
    assert.equal(admitted(list, [], bob, owner(alice, { admin: bob.keyHash })), true);
    assert.equal(admitted(list, [], alice, owner(alice, { admin: bob.keyHash })), false);
    assert.equal(admitted(list, [], bob, owner(alice, {})), false, 'no such certificate names nobody');
  });

  it('isAllowed finds a certificate secret in the stored secrets', () => {
    const der = Buffer.from(bob.certPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64');
    const secrets = { admin: { kind: 'x509', value: der }, pw: { kind: 'ascii', value: 'x' } };
    assert.equal(isAllowed({ read: ['$$SCONE::admin$$'] }, 'read', bob, alice.certPem, { secrets }), true);
    assert.equal(isAllowed({ read: ['$$SCONE::pw$$'] }, 'read', bob, alice.certPem, { secrets }), false);
  });

  it('a refusal says how many signatures are missing and from which signers', () => {
    const text = shortfall(atLeast2, { client: bob, signers: [a.hash] }, owner());
    assert.equal(
      text,
      `require-at-least-2: 1 more signature needed (1 of 2 present), from signers ${b.hash}, ${c.hash}`,
    );
    const none = shortfall(atLeast2, { client: bob, signers: [] }, owner());
    assert.match(none ?? '', /2 more signatures needed \(0 of 2 present\)/);
    assert.equal(shortfall(entries(['CREATOR']), { client: bob, signers: [] }, owner()), undefined);
  });
});

const NAME = 'governed';
const text = (predecessor: string) => `name: ${NAME}\npredecessor: ${predecessor}\nservices: []\n`;
const V1 = text('a'.repeat(64));
const named = namedSigners(
  entries([{ 'require-all': [{ signer: a.pem }, { signer: p256.pem }] }, { signer: p384.pem }, { signer: rsa.pem }]),
);
const invalid = (pattern: RegExp) => (e: CasError) => e.code === 'CAS_SIGNATURE_INVALID' && pattern.test(e.message);

describe('signatures over an upload', () => {
  it('verifies Ed25519, ECDSA P-256 / P-384 (DER) and RSA PKCS#1 v1.5 signers', async () => {
    for (const s of [a, p256, p384, rsa]) {
      assert.deepEqual(await verifiedSigners(NAME, V1, [sigBy(s, NAME, V1)], named), [s.hash]);
    }
  });

  it('refuses a forged signature, naming its signer', async () => {
    const forged = { signer: a.pem, signature: Buffer.alloc(64, 7).toString('base64') };
    await assert.rejects(verifiedSigners(NAME, V1, [forged], named), invalid(new RegExp(a.hash)));
  });

  it('binds the text, the predecessor in it and the name', async () => {
    const other = text('b'.repeat(64));
    await assert.rejects(verifiedSigners(NAME, other, [sigBy(a, NAME, V1)], named), invalid(/not a valid signature/));
    await assert.rejects(verifiedSigners(NAME, V1, [sigBy(a, 'other', V1)], named), invalid(/not a valid signature/));
    await assert.rejects(verifiedSigners(NAME, `${V1} `, [sigBy(a, NAME, V1)], named), invalid(/not a valid/));
  });

  it("refuses a signature of another key type's form (ECDSA as P1363, a key's signature under another key)", async () => {
    const p1363 = {
      signer: p256.pem,
      signature: sign('sha256', uploadMessage(NAME, V1), { key: p256.key, dsaEncoding: 'ieee-p1363' }).toString(
        'base64',
      ),
    };
    await assert.rejects(verifiedSigners(NAME, V1, [p1363], named), invalid(new RegExp(p256.hash)));
    const swapped = { signer: rsa.pem, signature: sigBy(p256, NAME, V1).signature };
    await assert.rejects(verifiedSigners(NAME, V1, [swapped], named), invalid(new RegExp(rsa.hash)));
  });

  it('counts a signer once, and ignores signers the list does not name (unverified)', async () => {
    const twice = [sigBy(a, NAME, V1), sigBy(a, NAME, V1)];
    assert.deepEqual(await verifiedSigners(NAME, V1, twice, named), [a.hash]);
    const stranger = { signer: b.pem, signature: Buffer.alloc(64).toString('base64') };
    assert.deepEqual(await verifiedSigners(NAME, V1, [stranger], named), []);
  });

  it('refuses a signer that is not a public key', async () => {
    const bad = { signer: 'not a key', signature: 'AAAA' };
    await assert.rejects(
      verifiedSigners(NAME, V1, [bad], named),
      invalid(/signatures\[0\]\.signer is not a public key/),
    );
  });
});
