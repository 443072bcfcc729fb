import type { AuditEntry, AuditHead, AuditLog } from './types.js';
import { auditEntrySchema } from '../contract/audit.js';

/**
 * STAND-IN, deleted at the merge of branch `audit` (whose export writer signs the trailer with the audit key):
 * the export file as JSON lines, a header, every entry up to the head read first, and a trailer naming that
 * head and the count. Nothing here is signed.
 */
export interface ExportSource {
  audit: AuditLog;
  caFingerprint: string;
  caCertPem: string;
  now: () => Date;
}

const PAGE = 500;

export async function* exportLines(source: ExportSource): AsyncGenerator<string> {
  const head = await source.audit.head();
  const header = {
    format: 'veil-audit-export',
    v: 1,
    exported_at: source.now().toISOString(),
    ca_fingerprint: source.caFingerprint,
    ca: source.caCertPem,
    certificates: await source.audit.certificates(),
  };
  yield `${JSON.stringify(header)}\n`;
  let count = 0;
  for (let after = 0; after < head.seq; ) {
    const page = (await source.audit.read(after, PAGE)).filter((e) => e.seq <= head.seq);
    if (page.length === 0) break;
    for (const entry of page) yield `${JSON.stringify(entry)}\n`;
    count += page.length;
    after = (page.at(-1) as AuditEntry).seq;
  }
  yield `${JSON.stringify(trailerOf(head, count))}\n`;
}

function trailerOf(head: AuditHead, count: number) {
  return { trailer: true, head, count, sig: '' };
}

/**
 * The stand-in's check of an export (until `veil audit verify` replaces it): consecutive seqs from 1, each
 * entry's prev the hash of the one before, and a trailer naming the last entry and the count. Returns the
 * entries; throws naming the first line that breaks the chain.
 */
export function checkExportLinks(text: string): AuditEntry[] {
  const lines = text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const header = lines.shift();
  const trailer = lines.pop() as { head?: AuditHead; count?: number } | undefined;
  if (header?.['format'] !== 'veil-audit-export') throw new Error('line 1 is not an export header');
  const entries = lines.map((line) => auditEntrySchema.parse(line));
  let prev: AuditHead = { seq: 0, hash: '0'.repeat(64) };
  for (const [i, entry] of entries.entries()) {
    if (entry.seq !== prev.seq + 1 || entry.prev !== prev.hash) throw new Error(`line ${i + 2}: the chain breaks`);
    prev = { seq: entry.seq, hash: entry.hash };
  }
  if (trailer?.head?.seq !== prev.seq || trailer.head.hash !== prev.hash || trailer.count !== entries.length) {
    throw new Error('the trailer does not name the last entry and the count');
  }
  return entries;
}
