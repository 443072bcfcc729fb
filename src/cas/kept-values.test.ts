import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED } from '../policy/index.js';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import type { CasError } from './errors.js';
import { identityFromPem } from './identity-of.js';
import { writeSession } from './sessions.js';
import { tempStore } from './test-store.js';
import { certificateValue, publicValues } from './values.js';

const { ctx } = tempStore('veil-kept-');
const key = generatePrivateKey();
const notBefore = new Date();
const notAfter = new Date(Date.UTC(2030, 0, 1));
const certDer = issueCertificate({ subjectKey: key, commonName: 'me', isCa: false, notBefore, notAfter });
const me = identityFromPem(pemEncode('CERTIFICATE', certDer));
const keyPem = pemEncode('PRIVATE KEY', key.pkcs8);
const indent = (pem: string) =>
  pem
    .trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');

/** The certificate with its notAfter (a UTCTime) set to month 13, which parses but is no date. */
function month13(der: Buffer): Buffer {
  const utc = Buffer.from([0x17, 0x0d]);
  const at = der.indexOf(utc, der.indexOf(utc) + 1);
  const bad = Buffer.from(der);
  bad.write('301399235959Z', at + 2, 'latin1');
  return bad;
}

const uniform = (e: CasError) =>
  e.code === 'CAS_POLICY_INVALID' &&
  e.issues?.[0]?.path === 'secrets[0].value' &&
  /has no value of this kind, key_type and size there to keep/.test(e.message) &&
  !/hex|base64|PEM|key|ascii|SUPER/i.test(e.message.replace(/key_type/, ''));

describe('a redacted value is kept only for a secret of the same kind', () => {
  it('refuses an update that keeps a private key as a public ascii secret', async () => {
    const v1 = `name: rk\nsecrets:\n  - name: k\n    kind: private-key\n    value: |\n${indent(keyPem)}\n`;
    const { hash } = await writeSession(ctx, v1, me);
    const v2 = `name: rk\npredecessor: ${hash}\nsecrets:\n  - {name: k, kind: ascii, export_public: true, value: ${REDACTED}}\n`;
    await assert.rejects(writeSession(ctx, v2, me), uniform);
    assert.deepEqual((await publicValues(ctx, 'rk')).values, {});
  });

  it('refuses alike whatever the stored value is and whatever the new kind', async () => {
    const { hash } = await writeSession(
      ctx,
      'name: kinds\nsecrets:\n  - {name: p, kind: ascii, value: SUPER-secret}\n',
      me,
    );
    for (const kind of ['private-key', 'binary', 'x509']) {
      const next = `name: kinds\npredecessor: ${hash}\nsecrets:\n  - {name: p, kind: ${kind}, value: ${REDACTED}}\n`;
      await assert.rejects(writeSession(ctx, next, me), uniform, kind);
    }
  });

  it('refuses a changed key_type or size as well', async () => {
    const v1 =
      'name: shape\nsecrets:\n  - {name: b, kind: binary, size: 16, value: 00112233445566778899aabbccddeeff}\n';
    const { hash } = await writeSession(ctx, v1, me);
    const next = `name: shape\npredecessor: ${hash}\nsecrets:\n  - {name: b, kind: binary, size: 8, value: ${REDACTED}}\n`;
    await assert.rejects(writeSession(ctx, next, me), uniform);
  });

  it('still keeps the value when only other fields change (read-modify-write)', async () => {
    const { hash } = await writeSession(ctx, 'name: same\nsecrets:\n  - {name: p, kind: ascii, value: hunter2}\n', me);
    const next = `name: same\npredecessor: ${hash}\nsecrets:\n  - {name: p, kind: ascii, export_public: true, value: ${REDACTED}}\n`;
    await writeSession(ctx, next, me);
    assert.equal((await publicValues(ctx, 'same')).values['p']?.value, 'hunter2');
  });
});

describe('certificate validity dates', () => {
  const badPem = pemEncode('CERTIFICATE', month13(certDer));

  it('refuses at upload an explicit certificate whose notAfter is no date', async () => {
    const text = `name: pub\nsecrets:\n  - name: c\n    kind: x509\n    export_public: true\n    value: |\n${indent(badPem)}\n`;
    await assert.rejects(
      writeSession(ctx, text, me),
      (e: CasError) =>
        e.code === 'CAS_SECRET_GENERATION' && e.status === 422 && /'c'.*not a valid date/.test(e.message),
    );
    const good = text.replace(indent(badPem), indent(pemEncode('CERTIFICATE', certDer)));
    await writeSession(ctx, good, me);
    assert.equal((await publicValues(ctx, 'pub')).values['c']?.expires, notAfter.toISOString());
  });

  it('reads a stored certificate with no valid notAfter without an expiry, not a failure', () => {
    assert.equal(certificateValue('x509', month13(certDer)).expires, null);
  });
});
