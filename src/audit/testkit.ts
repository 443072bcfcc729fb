import type { AuditEvent } from '../contract/audit.js';
import { generatePrivateKey, issueCertificate, pemEncode, privateKeyObject } from '../secrets/index.js';
import { sha256Hex } from './certificates.js';
import { chainEntries, EMPTY_HEAD, EntryDigest, headerHash, type AuditSigner } from './chain.js';
import { exportLines, signedTrailer } from './export.js';
import type { AuditEntry, AuditHead, AuditLog, EntryMaker } from './types.js';

/** Tests only: a CA, an audit certificate it issued, and an in-memory log signed with it. */
export interface TestAuthority {
  caPem: string;
  caFingerprint: string;
  certPem: string;
  signer: AuditSigner;
  caKey: ReturnType<typeof generatePrivateKey>;
  caDer: Buffer;
}

const DAY = 24 * 3600_000;

export function testAuthority(now = new Date()): TestAuthority {
  const caKey = generatePrivateKey('P-256');
  const caDer = issueCertificate({
    subjectKey: caKey,
    commonName: 'test CA',
    isCa: true,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DAY),
  });
  const { certPem, signer } = testSigner({ caKey, caDer }, now);
  return { caPem: pemEncode('CERTIFICATE', caDer), caFingerprint: sha256Hex(caDer), certPem, signer, caKey, caDer };
}

/** A signing key with a certificate from `ca` (isCa: a CA certificate, which lacks digitalSignature). */
export function testSigner(
  ca: { caKey: TestAuthority['caKey']; caDer: Buffer },
  now = new Date(),
  isCa = false,
): { certPem: string; signer: AuditSigner } {
  const key = generatePrivateKey('P-256');
  const der = issueCertificate({
    subjectKey: key,
    issuer: { certDer: ca.caDer, key: ca.caKey },
    commonName: 'veil-cas audit',
    isCa,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DAY),
  });
  return {
    certPem: pemEncode('CERTIFICATE', der),
    signer: { key: sha256Hex(der), privateKey: privateKeyObject(key.pkcs8) },
  };
}

export function sampleEvent(i: number): AuditEvent {
  const h = (n: number) => (n % 16).toString(16).repeat(64);
  switch (i % 4) {
    case 0:
      return { type: 'session.created', session: `ns/s${i}`, actor: h(i), old_hash: null, new_hash: h(i + 1) };
    case 1:
      return { type: 'value.read', session: `ns/s${i}`, secret: `pw${i}`, actor: null };
    case 2:
      return {
        type: 'attestation.refused',
        config_id: `ns/s${i}/svc`,
        code: 'CAS_ATTESTATION_FAILED',
        check: `check ${i}`,
      };
    default:
      return { type: 'backup.made', versions: i, heads: 1, blobs: 2, backup: h(i) };
  }
}

/** An AuditLog over an array (no store), for export and verification tests. */
export class MemoryLog implements AuditLog {
  readonly entries: AuditEntry[] = [];

  constructor(
    private readonly authority: TestAuthority,
    private readonly now = () => new Date(),
  ) {}

  async record(event: AuditEvent): Promise<AuditEntry> {
    const [entry] = chainEntries(await this.head(), [event], this.now(), this.authority.signer);
    this.entries.push(entry!);
    return entry!;
  }

  /** The entries are kept here, not in the store the write goes to. */
  async withEntry<T>(event: AuditEvent, write: (make: EntryMaker) => Promise<T>): Promise<T> {
    let made = false;
    const result = await write(() => {
      made = true;
      return [];
    });
    if (made) await this.record(event);
    return result;
  }

  async read(after: number, limit: number): Promise<AuditEntry[]> {
    return this.entries.filter((e) => e.seq > after).slice(0, limit);
  }

  async head(): Promise<AuditHead> {
    const last = this.entries[this.entries.length - 1];
    return last ? { seq: last.seq, hash: last.hash } : EMPTY_HEAD;
  }

  async certificates(): Promise<string[]> {
    return [this.authority.certPem];
  }
}

export async function exportText(log: AuditLog, authority: TestAuthority) {
  let text = '';
  const opts = { caFingerprint: authority.caFingerprint, signer: authority.signer, now: new Date() };
  for await (const line of exportLines(log, opts)) text += line;
  return text;
}

/** A trailer line for a crafted file (its header line and entry lines), stating `head`, signed by `signer`. */
export function trailerFor(headerLine: string, entryLines: readonly string[], head: AuditHead, signer: AuditSigner) {
  const digest = new EntryDigest();
  for (const line of entryLines) digest.add((JSON.parse(line) as AuditEntry).hash);
  return JSON.stringify(signedTrailer(head, new Date(), signer, digest.cover(headerHash(headerLine))));
}
