import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import type { AuditEntry, AuditEvent, AuditExportTrailer } from '../contract/audit.js';
import { canonicalJson } from '../policy/hash.js';
import type { AuditHead } from './types.js';

/**
 * The hash chain: entry hash = SHA-256("veil-audit-v1\0" | canonical JSON of {v, seq, time, prev, key, event}),
 * keys sorted at every level (policy/hash.ts's canonicalJson, the one canonical form of the repository), and the
 * audit key's ECDSA P-256 signature (SHA-256, DER, base64) over the 32 bytes of that hash.
 */
const ENTRY_LABEL = 'veil-audit-v1\0';
const TRAILER_LABEL = 'veil-audit-trailer-v2\0';
const ENTRIES_LABEL = 'veil-audit-entries-v1\0';
export const ZERO_HASH = '0'.repeat(64);
export const EMPTY_HEAD: AuditHead = { seq: 0, hash: ZERO_HASH };

/** The key that signs entries: its private key and the SHA-256 (hex) of its certificate's DER. */
export interface AuditSigner {
  key: string;
  privateKey: KeyObject;
}

export type EntryBody = Omit<AuditEntry, 'hash' | 'sig'>;

export function entryHash(body: EntryBody): string {
  const { v, seq, time, prev, key, event } = body;
  return labelled(ENTRY_LABEL, { v, seq, time, prev, key, event });
}

export function trailerHash(t: Omit<AuditExportTrailer, 'sig'>): string {
  const { end, head, time, key, header, entries, digest } = t;
  return labelled(TRAILER_LABEL, { end, head, time, key, header, entries, digest });
}

/** What a trailer vouches for besides the head: the header line and the entries of one file. */
export interface ExportCover {
  header: string;
  entries: number;
  digest: string;
}

/** SHA-256 of the header line as written (without its newline). */
export function headerHash(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

/** The running digest of the entries a file holds (writer and verifier feed it the same hashes in order). */
export class EntryDigest {
  private readonly hash = createHash('sha256').update(ENTRIES_LABEL, 'utf8');
  private n = 0;

  add(entryHash: string): void {
    this.hash.update(Buffer.from(entryHash, 'hex'));
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  cover(header: string): ExportCover {
    return { header, entries: this.n, digest: this.hash.copy().digest('hex') };
  }
}

function labelled(label: string, value: unknown): string {
  return createHash('sha256').update(label, 'utf8').update(canonicalJson(value), 'utf8').digest('hex');
}

export function signHash(hash: string, privateKey: KeyObject): string {
  return sign('sha256', Buffer.from(hash, 'hex'), privateKey).toString('base64');
}

/**
 * A signature is checked over its canonical base64 only: Node's decoder ignores stray characters and the unused
 * bits of the last one, so another spelling of the same bytes would otherwise pass as unchanged.
 */
export function signatureValid(hash: string, sig: string, publicKey: KeyObject): boolean {
  const bytes = Buffer.from(sig, 'base64');
  if (bytes.toString('base64') !== sig) return false;
  try {
    return verify('sha256', Buffer.from(hash, 'hex'), publicKey, bytes);
  } catch {
    return false;
  }
}

/** The entry after `head`: hashed and signed. */
export function nextEntry(head: AuditHead, event: AuditEvent, time: Date, signer: AuditSigner): AuditEntry {
  const body: EntryBody = {
    v: 1,
    seq: head.seq + 1,
    time: time.toISOString(),
    prev: head.hash,
    key: signer.key,
    event,
  };
  const hash = entryHash(body);
  return { ...body, hash, sig: signHash(hash, signer.privateKey) };
}

/** Entries for `events`, chained from `head` (the store's tail, read under its lock). */
export function chainEntries(head: AuditHead, events: readonly AuditEvent[], time: Date, signer: AuditSigner) {
  const out: AuditEntry[] = [];
  let at = head;
  for (const event of events) {
    const entry = nextEntry(at, event, time, signer);
    out.push(entry);
    at = { seq: entry.seq, hash: entry.hash };
  }
  return out;
}
