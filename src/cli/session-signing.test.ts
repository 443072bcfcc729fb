import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_UPLOAD_SIGNATURES, sessionEnvelopeSchema } from '../contract/index.js';
import { accessEntries } from '../policy/index.js';
import { namedSigners } from '../cas/governance.js';
import { verifiedSigners } from '../cas/signatures.js';
import type { CliError } from './errors.js';
import {
  addSignature,
  signUpload,
  signatureOver,
  signatureValid,
  signaturesFileOf,
  signaturesFor,
} from './session-signing.js';

/** The client side of governance: what it signs is what the CAS verifies. */
const dir = mkdtempSync(join(tmpdir(), 'veil-sign-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const keyPem = (type: 'ed25519' | 'ec' | 'rsa', options: object = {}) =>
  generateKeyPairSync(type as 'ed25519', options)
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
const TEXT = 'name: app\npredecessor: ' + 'a'.repeat(64) + '\n';

describe('signing uploads (CLI)', () => {
  it('signUpload makes an envelope the CAS accepts, for every signer key type', async () => {
    for (const key of [
      keyPem('ed25519'),
      keyPem('ec', { namedCurve: 'P-256' }),
      keyPem('ec', { namedCurve: 'P-384' }),
    ]) {
      const envelope = sessionEnvelopeSchema.parse(signUpload(TEXT, 'app', key));
      const sig = envelope.signatures[0]!;
      const named = namedSigners(accessEntries([{ signer: sig.signer }], 'update'));
      assert.equal((await verifiedSigners('app', envelope.session, envelope.signatures, named)).length, 1);
      assert.equal(signatureValid(TEXT, 'app', sig), true);
      assert.equal(signatureValid(`${TEXT}#`, 'app', sig), false, 'another text');
      assert.equal(signatureValid(TEXT, 'other', sig), false, 'another name');
    }
  });

  it('refuses to sign with a key the CAS would not accept', () => {
    assert.throws(
      () => signatureOver(TEXT, 'app', keyPem('ec', { namedCurve: 'P-521' })),
      (e: CliError) => e.code === 'CLI_SIGNATURE' && /not supported/.test(e.message),
    );
  });

  it('keeps one signature per signer in FILE.signatures, bounded', () => {
    const file = join(dir, 's.yaml');
    writeFileSync(file, TEXT);
    const key = keyPem('ed25519');
    assert.equal(addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', key)), 1);
    assert.equal(addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', key)), 1, 'replaced');
    assert.equal(addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', keyPem('ed25519'))), 2);
    assert.equal(JSON.parse(readFileSync(`${file}.signatures`, 'utf8')).signatures.length, 2);
    for (let i = 2; i < MAX_UPLOAD_SIGNATURES; i++)
      addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', keyPem('ed25519')));
    assert.throws(
      () => addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', keyPem('ed25519'))),
      (e: CliError) => e.code === 'CLI_SIGNATURE',
    );
  });

  it('an upload sends the signatures file beside the session, and refuses one the session no longer fits', () => {
    const file = join(dir, 'u.yaml');
    assert.deepEqual(signaturesFor({ text: TEXT, name: 'app' }, file), [], 'no file: nothing to send');
    addSignature(signaturesFileOf(file), signatureOver(TEXT, 'app', keyPem('ed25519')));
    assert.equal(signaturesFor({ text: TEXT, name: 'app' }, file).length, 1);
    assert.throws(
      () => signaturesFor({ text: `${TEXT}# edited\n`, name: 'app' }, file),
      (e: CliError) => e.code === 'CLI_SIGNATURE' && /does not verify over/.test(e.message),
    );
    assert.throws(
      () => signaturesFor({ text: TEXT, name: 'app' }, file, join(dir, 'missing')),
      (e: CliError) => e.code === 'CLI_FILE',
    );
  });
});
