import {
  AUDIT_EXPORT_FORMAT,
  AUDIT_EXPORT_VERSION,
  type AuditExportHeader,
  type AuditExportTrailer,
} from '../contract/audit.js';
import { EntryDigest, headerHash, signHash, trailerHash, type AuditSigner, type ExportCover } from './chain.js';
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
  };
  // Every line is JSON.stringify of its value: the one spelling a verifier accepts.
  const headerLine = JSON.stringify(header);
  const digest = new EntryDigest();
  yield `${headerLine}\n`;
  for (let after = opts.after ?? 0; after < head.seq; ) {
    const page = await log.read(after, Math.min(EXPORT_PAGE, head.seq - after));
    if (page.length === 0) break;
    for (const entry of page) {
      if (entry.seq > head.seq) break;
      digest.add(entry.hash);
      yield `${JSON.stringify(entry)}\n`;
    }
    after = page[page.length - 1]!.seq;
  }
  const trailer = signedTrailer(head, opts.now, opts.signer, digest.cover(headerHash(headerLine)));
  yield `${JSON.stringify(trailer)}\n`;
}

/** The trailer of a file whose header line and entries are `cover`, stating `head`, signed by the audit key. */
export function signedTrailer(head: AuditHead, now: Date, signer: AuditSigner, cover: ExportCover): AuditExportTrailer {
  const body = { end: AUDIT_EXPORT_FORMAT, head, time: now.toISOString(), key: signer.key, ...cover } as const;
  return { ...body, sig: signHash(trailerHash(body), signer.privateKey) };
}
