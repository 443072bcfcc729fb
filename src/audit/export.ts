import {
  AUDIT_EXPORT_FORMAT,
  AUDIT_EXPORT_VERSION,
  type AuditEntry,
  type AuditExportHeader,
  type AuditExportTrailer,
} from '../contract/audit.js';
import { signHash, trailerHash, type AuditSigner } from './chain.js';
import type { AuditHead, AuditLog } from './types.js';

/** Entries read from the log per page while exporting: memory holds one page. */
export const EXPORT_PAGE = 256;

export interface ExportOptions {
  /** SHA-256 (hex) of the CAS CA certificate's DER. */
  caFingerprint: string;
  /** Signs the trailer (the audit key). */
  signer: AuditSigner;
  /** When the export is made (the trailer's time). */
  now: Date;
  /** An owner's view: only entries it keeps; the header says `partial` and a verifier expects gaps. */
  filter?: (entry: AuditEntry) => boolean;
  /** Entries after this seq only (0: the whole log). A whole export starts at 0, or its verifier sees a gap. */
  after?: number;
}

/**
 * The export as JSON lines (each ending in "\n"): the header, the entries up to the head read at the start (one
 * consistent end, however many are appended meanwhile), then the trailer signed by the audit key.
 */
export async function* exportLines(log: AuditLog, opts: ExportOptions): AsyncGenerator<string> {
  const head = await log.head();
  const header: AuditExportHeader = {
    format: AUDIT_EXPORT_FORMAT,
    version: AUDIT_EXPORT_VERSION,
    ca_fingerprint: opts.caFingerprint,
    certificates: await log.certificates(),
    ...(opts.filter ? { partial: true } : {}),
  };
  yield `${JSON.stringify(header)}\n`;
  for (let after = opts.after ?? 0; after < head.seq; ) {
    const page = await log.read(after, Math.min(EXPORT_PAGE, head.seq - after));
    if (page.length === 0) break;
    for (const entry of page) {
      if (entry.seq > head.seq) break;
      if (!opts.filter || opts.filter(entry)) yield `${JSON.stringify(entry)}\n`;
    }
    after = page[page.length - 1]!.seq;
  }
  yield `${JSON.stringify(signedTrailer(head, opts.now, opts.signer))}\n`;
}

export function signedTrailer(head: AuditHead, now: Date, signer: AuditSigner): AuditExportTrailer {
  const body = { end: AUDIT_EXPORT_FORMAT, head, time: now.toISOString(), key: signer.key } as const;
  return { ...body, sig: signHash(trailerHash(body), signer.privateKey) };
}
