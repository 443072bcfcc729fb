import type { AuditEntry, AuditHead, AuditLog } from './types.js';

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
