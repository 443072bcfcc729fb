import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { AuditEntry } from '../contract/audit.js';
import type { AuditHead } from './types.js';
import { entryHash, nextEntry, verifyAuditExport, type AuditError } from './index.js';
import { pemDecode, pemEncode } from '../secrets/index.js';
import { sha256Hex } from './certificates.js';
import { exportText, MemoryLog, sampleEvent, testAuthority, testSigner, trailerFor as craft } from './testkit.js';

/** One rule of the verifier per case, each named by a mutation (scripts/mutations/audit.json). */
const authority = testAuthority();
const log = new MemoryLog(authority);
for (let i = 0; i < 12; i++) await log.record(sampleEvent(i));
const good = await exportText(log, authority);
const lines = () => good.trimEnd().split('\n');
const join = (l: string[]) => `${l.join('\n')}\n`;
const opts = { caPem: authority.caPem };
const entryAt = (l: string[], seq: number) => JSON.parse(l[seq]!) as AuditEntry;
const trailerFor = (header: string, entries: string[], head: AuditHead) =>
  craft(header, entries, head, authority.signer);

/** The CA's name and key identifier, a signature the CA never made (its last byte changed). */
function forgedSignature(ca: typeof authority) {
  const { certPem, signer } = testSigner(ca);
  const der = pemDecode(certPem, 'CERTIFICATE')!;
  der[der.length - 1]! ^= 0x01;
  return { certPem: pemEncode('CERTIFICATE', der), signer: { ...signer, key: sha256Hex(der) } };
}

function refused(code: string, line: number, seq?: number) {
  return (e: AuditError) => {
    assert.equal(e.code, code, e.message);
    assert.equal(e.line, line, e.message);
    if (seq !== undefined) assert.equal(e.seq, seq, e.message);
    assert.ok(e.hint, 'a hint');
    return true;
  };
}

describe('verifyAuditExport', () => {
  it('accepts a whole export, from text or a stream, and names its head', async () => {
    const head = await log.head();
    assert.deepEqual((await verifyAuditExport(good, opts)).head, head);
    const streamed = await verifyAuditExport(Readable.from([Buffer.from(good.slice(0, 100)), good.slice(100)]), opts);
    assert.equal(streamed.entries, 12);
    assert.deepEqual((await verifyAuditExport(good, { ...opts, lastSeenHead: head })).head, head);
  });

  it('names an entry whose content does not hash to its hash', async () => {
    const l = lines();
    const e = entryAt(l, 5);
    l[5] = JSON.stringify({ ...e, time: '2000-01-01T00:00:00.000Z' });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 6, 5));
  });

  it('names an entry re-hashed after an edit, whose signature no longer verifies', async () => {
    const l = lines();
    const e = entryAt(l, 7);
    const edited = { ...e, event: { ...e.event, session: 'ns/other' } } as AuditEntry;
    l[7] = JSON.stringify({ ...edited, hash: entryHash(edited) });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 8, 7));
  });

  it('refuses another spelling of the same signature bytes', async () => {
    const l = lines();
    const e = entryAt(l, 3);
    l[3] = JSON.stringify({ ...e, sig: `${e.sig}\n` });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 4, 3));
  });

  it('names the entry after a removed one, and tells reordering apart', async () => {
    const removed = lines();
    removed.splice(4, 1);
    await assert.rejects(verifyAuditExport(join(removed), opts), refused('AUDIT_REMOVED', 5, 5));
    removed[5] = JSON.stringify({ ...entryAt(removed, 5), time: '2000-01-01T00:00:00.000Z' });
    await assert.rejects(verifyAuditExport(join(removed), opts), refused('AUDIT_REMOVED', 5, 5));
    const swapped = lines();
    [swapped[4], swapped[5]] = [swapped[5]!, swapped[4]!];
    await assert.rejects(verifyAuditExport(join(swapped), opts), refused('AUDIT_REORDERED', 5, 5));
  });

  it('names a repeated entry', async () => {
    const l = lines();
    l.splice(3, 0, l[3]!);
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_REORDERED', 5, 3));
  });

  it('names an entry whose prev is not the hash before it, though signed', async () => {
    const l = lines();
    const e = entryAt(l, 6);
    const spliced = nextEntry({ seq: 5, hash: 'ab'.repeat(32) }, e.event, new Date(e.time), authority.signer);
    l[6] = JSON.stringify(spliced);
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_LINK', 7, 6));
  });

  it('detects a missing trailer, a trailer whose head the entries do not reach, and a cut line', async () => {
    const l = lines();
    await assert.rejects(verifyAuditExport(join(l.slice(0, -1)), opts), refused('AUDIT_TRUNCATED', 14, 13));
    const kept = [...l.slice(0, 10), l[l.length - 1]!];
    await assert.rejects(verifyAuditExport(join(kept), opts), refused('AUDIT_TRUNCATED', 11, 10));
    await assert.rejects(verifyAuditExport(good.slice(0, good.length - 30), opts), refused('AUDIT_TRUNCATED', 14));
  });

  it('refuses an edited trailer', async () => {
    const l = lines();
    const t = JSON.parse(l[l.length - 1]!) as { time: string };
    l[l.length - 1] = JSON.stringify({ ...t, time: '2001-01-01T00:00:00.000Z' });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_EDITED', 14));
  });

  it('refuses certificates the CA did not issue or that may not sign, and another CA', async () => {
    const other = testAuthority();
    const foreign = new MemoryLog({ ...other, caPem: authority.caPem, caFingerprint: authority.caFingerprint });
    await foreign.record(sampleEvent(1));
    const text = await exportText(foreign, { ...other, caFingerprint: authority.caFingerprint });
    await assert.rejects(verifyAuditExport(text, opts), refused('AUDIT_CERTIFICATE', 1));
    const caCert = testSigner(authority, new Date(), true);
    const noUsage = new MemoryLog({ ...authority, ...caCert });
    await noUsage.record(sampleEvent(1));
    const text2 = await exportText(noUsage, { ...authority, ...caCert });
    await assert.rejects(verifyAuditExport(text2, opts), refused('AUDIT_CERTIFICATE', 1));
    const forged = forgedSignature(authority);
    const forgedLog = new MemoryLog({ ...authority, ...forged });
    await forgedLog.record(sampleEvent(1));
    const text3 = await exportText(forgedLog, { ...authority, ...forged });
    await assert.rejects(verifyAuditExport(text3, opts), refused('AUDIT_CERTIFICATE', 1));
    const otherCa = verifyAuditExport(good, { caPem: other.caPem });
    await assert.rejects(otherCa, (e: AuditError) => refused('AUDIT_CERTIFICATE', 1)(e) && /names CA/.test(e.message));
  });

  it('refuses an entry signed by a key that is not in the header', async () => {
    const l = lines();
    const stranger = testSigner(authority);
    const e = entryAt(l, 2);
    l[2] = JSON.stringify(nextEntry({ seq: 1, hash: e.prev }, e.event, new Date(e.time), stranger.signer));
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_CERTIFICATE', 3, 2));
  });

  it('detects a rollback to an older valid export, and a fork at the head seen before', async () => {
    const head = await log.head();
    const l = lines();
    const older = join([...l.slice(0, 9), trailerFor(l[0]!, l.slice(1, 9), { seq: 8, hash: entryAt(l, 8).hash })]);
    await verifyAuditExport(older, opts);
    await assert.rejects(verifyAuditExport(older, { ...opts, lastSeenHead: head }), refused('AUDIT_ROLLBACK', 10, 9));
    const seen = { seq: 4, hash: 'cd'.repeat(32) };
    await assert.rejects(verifyAuditExport(good, { ...opts, lastSeenHead: seen }), refused('AUDIT_ROLLBACK', 5, 4));
  });

  it('refuses lines that are not entries, and text after the trailer', async () => {
    const l = lines();
    l[2] = JSON.stringify({ ...entryAt(l, 2), extra: 1 });
    await assert.rejects(verifyAuditExport(join(l), opts), refused('AUDIT_FORMAT', 3, 2));
    await assert.rejects(verifyAuditExport(`${good}{}\n`, opts), refused('AUDIT_FORMAT', 15));
    await assert.rejects(verifyAuditExport('', opts), refused('AUDIT_FORMAT', 1));
  });
});
