import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { AuditEntry } from '../contract/audit.js';
import { generatePrivateKey, issueCertificate, pemEncode, privateKeyObject } from '../secrets/index.js';
import { sha256Hex } from './certificates.js';
import { verifyAuditExport, type AuditError, type AuditSigner } from './index.js';
import { exportText, MemoryLog, sampleEvent, testAuthority, trailerFor, type TestAuthority } from './testkit.js';

/**
 * What an export binds beyond its entries' hashes (each rule named by a mutation, scripts/mutations/fixverify.json):
 * only audit certificates sign, every line is the writer's one spelling, and the trailer vouches for this
 * header line and these entries.
 */
const authority = testAuthority();
const log = new MemoryLog(authority);
for (let i = 0; i < 4; i++) await log.record(sampleEvent(i));
await log.record({
  type: 'attestation.released',
  config_id: 'ns/s/api',
  session: 'ns/s',
  service: 'api',
  session_hash: 'a'.repeat(64),
  evidence: 'simulation',
  simulated: true,
  measurement: 'b'.repeat(64),
  secrets: ['x'],
});
const good = await exportText(log, authority);
const lines = () => good.trimEnd().split('\n');
const join = (l: string[]) => `${l.join('\n')}\n`;
const opts = { caPem: authority.caPem };

function refused(code: string, line: number, seq?: number, pattern?: RegExp) {
  return (e: AuditError) => {
    assert.equal(e.code, code, e.message);
    assert.equal(e.line, line, e.message);
    if (seq !== undefined) assert.equal(e.seq, seq, e.message);
    if (pattern) assert.match(e.message, pattern);
    assert.ok(e.hint, 'a hint');
    return true;
  };
}

const DAY = 24 * 3600_000;

/** A key with a certificate from the test CA, as the CAS's CA issues its other certificates. */
function issued(ca: TestAuthority, commonName: string, endpoint?: 'server' | 'client') {
  const key = generatePrivateKey('P-256');
  const now = Date.now();
  const der = issueCertificate({
    subjectKey: key,
    issuer: { certDer: ca.caDer, key: ca.caKey },
    commonName,
    isCa: false,
    ...(endpoint ? { endpoint, dns: ['localhost'] } : {}),
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + DAY),
  });
  const signer: AuditSigner = { key: sha256Hex(der), privateKey: privateKeyObject(key.pkcs8) };
  return { certPem: pemEncode('CERTIFICATE', der), signer };
}

/** A whole log signed, entries and trailer, by `cert`, with it in the header. */
async function forgedBy(cert: ReturnType<typeof issued>): Promise<string> {
  const forger = { ...authority, ...cert };
  const forged = new MemoryLog(forger);
  await forged.record(sampleEvent(1));
  return exportText(forged, forger);
}

describe('audit certificates', () => {
  it("refuses a log signed by the CA's TLS server certificate (CN veil-cas, serverAuth)", async () => {
    const text = await forgedBy(issued(authority, 'veil-cas', 'server'));
    await assert.rejects(verifyAuditExport(text, opts), refused('AUDIT_CERTIFICATE', 1, undefined, /subject/));
  });

  it('refuses a certificate named as the audit one with an extended key usage (server or client)', async () => {
    for (const endpoint of ['server', 'client'] as const) {
      const text = await forgedBy(issued(authority, 'veil-cas audit', endpoint));
      const run = verifyAuditExport(text, opts);
      await assert.rejects(run, refused('AUDIT_CERTIFICATE', 1, undefined, /extended key usage/));
    }
  });

  it('refuses a certificate of the CA without EKU under another name', async () => {
    const text = await forgedBy(issued(authority, 'veil-cas auditor'));
    await assert.rejects(verifyAuditExport(text, opts), refused('AUDIT_CERTIFICATE', 1, undefined, /subject/));
  });
});

describe('the writer spelling of every line', () => {
  it('writes every line as JSON.stringify of its value, and verifies it', async () => {
    for (const line of lines()) assert.equal(JSON.stringify(JSON.parse(line)), line);
    assert.equal((await verifyAuditExport(good, opts)).entries, 5);
  });

  it('refuses a duplicate key whose first value differs ("secrets":[],"secrets":["x"])', async () => {
    const l = lines();
    assert.ok(l[5]!.includes('"secrets":["x"]'));
    l[5] = l[5]!.replace('"secrets":["x"]', '"secrets":[],"secrets":["x"]');
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_FORMAT', 6, 5, /JSON.stringify/));
  });

  it('refuses another spelling of a number ("seq":1.0e0), of the header and of the trailer', async () => {
    const l = lines();
    l[1] = l[1]!.replace('"seq":1,', '"seq":1.0e0,');
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_FORMAT', 2, 1));
    const h = lines();
    h[0] = h[0]!.replace('"version":', '"version": ');
    await assert.rejects(verifyAuditExport(join(h), opts), refused('AUDIT_FORMAT', 1));
    const t = lines();
    t[6] = `${t[6]!}\r`;
    await assert.rejects(verifyAuditExport(join(t), opts), refused('AUDIT_FORMAT', 7));
  });

  it('refuses a byte order mark, bytes that are not UTF-8, and a last line without its newline', async () => {
    await assert.rejects(verifyAuditExport(`\uFEFF${good}`, opts), refused('AUDIT_FORMAT', 1));
    const withBom = Readable.from([Buffer.from(`\uFEFF${good}`)]);
    await assert.rejects(verifyAuditExport(withBom, opts), refused('AUDIT_FORMAT', 1));
    const bytes = Buffer.from(good);
    const at = bytes.indexOf('ns/s/api');
    const bad = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 1)]);
    await assert.rejects(verifyAuditExport(Readable.from([bad]), opts), (e: AuditError) => e.code === 'AUDIT_FORMAT');
    await assert.rejects(verifyAuditExport(good.slice(0, -1), opts), refused('AUDIT_TRUNCATED', 7));
  });
});

describe('what the trailer vouches for', () => {
  const head = () => JSON.parse(lines()[6]!).head as { seq: number; hash: string };

  it('refuses a header other than the one the trailer signed', async () => {
    const l = lines();
    const header = JSON.parse(l[0]!) as { certificates: string[] };
    l[0] = JSON.stringify({ ...header, certificates: [...header.certificates, header.certificates[0]] });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 1, undefined, /header/));
  });

  it('refuses a trailer whose header hash, count or digest was changed: its signature covers them', async () => {
    for (const field of ['header', 'digest', 'entries'] as const) {
      const l = lines();
      const t = JSON.parse(l[6]!) as Record<string, unknown>;
      l[6] = JSON.stringify({ ...t, [field]: field === 'entries' ? 4 : '0'.repeat(64) });
      await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 7, undefined, /signature/));
    }
  });

  it('refuses a signed trailer that vouches for other entries than the file holds', async () => {
    const l = lines();
    const other = [...l.slice(1, 5), JSON.stringify({ ...(JSON.parse(l[5]!) as AuditEntry), hash: '0'.repeat(64) })];
    const trailer = trailerFor(l[0]!, other, head(), authority.signer);
    await assert.rejects(verifyAuditExport(join([...l.slice(0, 6), trailer]), opts), refused('AUDIT_EDITED', 7));
    const fewer = trailerFor(l[0]!, l.slice(1, 5), head(), authority.signer);
    await assert.rejects(verifyAuditExport(join([...l.slice(0, 6), fewer]), opts), refused('AUDIT_EDITED', 7));
    const same = trailerFor(l[0]!, l.slice(1, 6), head(), authority.signer);
    assert.equal((await verifyAuditExport(join([...l.slice(0, 6), same]), opts)).entries, 5);
  });
});
