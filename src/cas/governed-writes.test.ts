import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import type { UploadSignature } from '../contract/index.js';
import { signatureOver } from '../cli/session-signing.js';
import type { CasError } from './errors.js';
import { listSessions, readSession, writeSession, writeUpload } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

/** Updates of a governed session and sessions created in a governed namespace, through writeUpload. */
const { ctx } = tempStore('veil-governed-');
const [alice, bob] = [clientIdentity('alice'), clientIdentity('bob')];

const keyPair = () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
};
const [k1, k2, k3] = [keyPair(), keyPair(), keyPair()];
const pubOf = (key: string) => signatureOver('x', 'x', key).signer;
const block = (pem: string, at: number) =>
  pem
    .trim()
    .split('\n')
    .map((l) => `${' '.repeat(at)}${l}`)
    .join('\n');
const signerLines = (keys: string[]) => keys.map((k) => `        - signer: |\n${block(pubOf(k), 12)}`).join('\n');
const signers = signerLines([k1, k2, k3]);

const governed = (name: string, predecessor?: string, extra = '') =>
  [
    `name: ${name}`,
    ...(predecessor ? [`predecessor: ${predecessor}`] : []),
    'access_policy:',
    '  read: [ANY]',
    '  update:',
    '    - require-at-least-2:',
    signers,
    extra,
  ].join('\n');

const signed = (text: string, name: string, keys: string[], creator?: string): UploadSignature[] =>
  keys.map((k) => signatureOver(text, name, k, creator));
const code = (want: string, pattern?: RegExp) => (e: CasError) =>
  e.code === want && (!pattern || pattern.test(e.message));

describe('a certificate secret as an identity', () => {
  it('$$SCONE::name$$ in read admits the holder of that certificate, in reads and in the listing', async () => {
    const pem = bob.certPem
      .trim()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
    const text = `name: by-secret\naccess_policy:\n  read: ["$$SCONE::admin$$"]\nsecrets:\n  - name: admin\n    kind: x509\n    value: |\n${pem}\n`;
    await writeSession(ctx, text, alice);
    assert.equal((await readSession(ctx, 'by-secret', undefined, bob)).hash.length, 64);
    await assert.rejects(() => readSession(ctx, 'by-secret', undefined, alice), code('CAS_FORBIDDEN'));
    assert.ok((await listSessions(ctx, bob)).some((s) => s.name === 'by-secret'));
    assert.ok(!(await listSessions(ctx, alice)).some((s) => s.name === 'by-secret'));
  });
});

describe('governed writes', () => {
  it('updates with 2 or 3 signatures, refuses 1 naming what is missing, whoever uploads', async () => {
    const v1 = await writeSession(ctx, governed('app'), alice);
    const next = governed('app', v1.hash, 'services: []\n');
    await assert.rejects(writeSession(ctx, next, alice), code('CAS_SIGNATURES_MISSING', /2 more signatures needed/));
    const one = writeUpload(ctx, { text: next, signatures: signed(next, 'app', [k1]) }, bob);
    await assert.rejects(one, code('CAS_SIGNATURES_MISSING', /updating session 'app' needs signatures: .*1 more/));
    const two = await writeUpload(ctx, { text: next, signatures: signed(next, 'app', [k1, k3]) }, bob);
    assert.equal(two.created, false);
    const third = governed('app', two.hash, 'services: [] # again\n');
    const three = await writeUpload(ctx, { text: third, signatures: signed(third, 'app', [k1, k2, k3]) }, bob);
    assert.equal((await readSession(ctx, 'app', undefined, bob)).hash, three.hash);
  });

  it('a signed update cannot be replayed onto another version', async () => {
    const v1 = await writeSession(ctx, governed('replay'), alice);
    const v2text = governed('replay', v1.hash, 'services: []\n');
    const sigs = signed(v2text, 'replay', [k1, k2]);
    const v2 = await writeUpload(ctx, { text: v2text, signatures: sigs }, bob);
    // The same upload again names a predecessor that is no longer current.
    await assert.rejects(writeUpload(ctx, { text: v2text, signatures: sigs }, bob), code('CAS_STALE_PREDECESSOR'));
    // Pointed at the current version, the text is another one, and the signatures do not carry over.
    const moved = v2text.replace(v1.hash, v2.hash);
    await assert.rejects(writeUpload(ctx, { text: moved, signatures: sigs }, bob), code('CAS_SIGNATURE_INVALID'));
  });

  it('a forged signature is refused even beside enough valid ones', async () => {
    const v1 = await writeSession(ctx, governed('forged'), alice);
    const next = governed('forged', v1.hash, 'services: []\n');
    const forged = { signer: pubOf(k3), signature: Buffer.alloc(64, 1).toString('base64') };
    const upload = { text: next, signatures: [...signed(next, 'forged', [k1, k2]), forged] };
    await assert.rejects(writeUpload(ctx, upload, bob), code('CAS_SIGNATURE_INVALID', /signatures\[2\]/));
  });

  it('creating a session in a governed namespace needs the signatures of its create_sessions', async () => {
    const ns = `name: team\naccess_policy:\n  create_sessions:\n    - require-all:\n${signerLines([k2, k3])}\n        - CREATOR\n`;
    await writeSession(ctx, ns, alice);
    const child = 'name: team/app\n';
    await assert.rejects(writeSession(ctx, child, alice), code('CAS_SIGNATURES_MISSING', /creating 'team\/app'/));
    await assert.rejects(
      writeUpload(ctx, { text: child, signatures: signed(child, 'team/app', [k2, k3], bob.keyHash) }, bob),
      code('CAS_FORBIDDEN'),
      'CREATOR is a member: the namespace creator must upload',
    );
    const forAlice = signed(child, 'team/app', [k2, k3], alice.keyHash);
    const made = await writeUpload(ctx, { text: child, signatures: forAlice }, alice);
    assert.equal(made.created, true);
  });

  it('a signed create holds for the uploader it names: whoever else holds the signatures cannot create first', async () => {
    const ns = `name: org\naccess_policy:\n  create_sessions:\n    - require-all:\n${signerLines([k1, k2])}\n`;
    await writeSession(ctx, ns, alice);
    const child = 'name: org/app\n';
    const forAlice = signed(child, 'org/app', [k1, k2], alice.keyHash);
    await assert.rejects(
      writeUpload(ctx, { text: child, signatures: forAlice }, bob),
      code('CAS_SIGNATURE_INVALID', new RegExp(`org/app' by the client with key hash ${bob.keyHash}`)),
    );
    assert.equal(await ctx.store.current('org/app'), undefined, 'the front-runner created nothing');
    await assert.rejects(
      writeUpload(ctx, { text: child, signatures: signed(child, 'org/app', [k1, k2]) }, alice),
      code('CAS_SIGNATURE_INVALID'),
      'a create signed with the update message (no uploader) does not verify',
    );
    const made = await writeUpload(ctx, { text: child, signatures: forAlice }, alice);
    assert.equal(made.created, true);
    assert.equal((await ctx.store.current('org/app'))?.creator, alice.certPem);
  });
});
