import {
  auditEntrySchema,
  auditExportHeaderSchema,
  auditExportTrailerSchema,
  type AuditEntry,
  type AuditExportTrailer,
} from '../contract/audit.js';
import { auditKeys, parseCa, type AuditKeys } from './certificates.js';
import { EntryDigest, entryHash, headerHash, signatureValid, trailerHash, ZERO_HASH } from './chain.js';
import { AuditError, type AuditErrorCode } from './errors.js';
import { linesOf, type Line } from './lines.js';
import type { AuditHead } from './types.js';

export interface VerifyOptions {
  /** PEM of the CAS CA certificate: the only thing trusted. */
  caPem: string;
  /** The head kept from the last verification: a log that does not reach it, or differs at it, is a rollback. */
  lastSeenHead?: AuditHead | undefined;
}

export interface VerifiedExport {
  /** The head the trailer states (the last entry's): keep it for the next --head. */
  head: AuditHead;
  entries: number;
  exportedAt: string;
}

/**
 * Verifies an export (text, or a stream of its bytes) line by line and throws AuditError naming the FIRST bad
 * line (and its seq): edited (hash, signature), removed (a gap), reordered or duplicated, spliced from another
 * chain (prev), truncated (no trailer, or a head the entries do not reach), rolled back (before lastSeenHead, or
 * a fork at it), or re-encoded (a line that is not JSON.stringify of its value: duplicate keys, another spelling
 * of a number, spaces). The signed trailer vouches for this header line and these entries. Memory holds one line
 * and the header's certificates.
 */
export async function verifyAuditExport(
  input: string | AsyncIterable<string | Buffer>,
  opts: VerifyOptions,
): Promise<VerifiedExport> {
  const { ca, fingerprint } = parseCa(opts.caPem);
  const lines = linesOf(input);
  const first = await lines.next();
  if (first.done) throw fail('AUDIT_FORMAT', 'the export is empty: no header line', 1);
  const header = parseHeader(first.value, fingerprint);
  const state = new ChainState(auditKeys(header.certificates, ca), headerHash(first.value.text), opts);
  for await (const line of lines) {
    if (state.done) throw fail('AUDIT_FORMAT', 'text follows the trailer', line.number);
    const json = parseLine(line);
    if (isObject(json) && 'end' in json) state.trailer(json, line.number);
    else state.entry(json, line.number);
  }
  return state.finish();
}

function parseHeader(line: Line, fingerprint: string) {
  const parsed = auditExportHeaderSchema.safeParse(parseLine(line));
  if (!parsed.success) {
    throw fail('AUDIT_FORMAT', `the header (line 1) is not an audit export's (${issue(parsed.error)})`, 1);
  }
  if (parsed.data.ca_fingerprint !== fingerprint) {
    throw fail('AUDIT_CERTIFICATE', `the export names CA ${parsed.data.ca_fingerprint}, not the CA given`, 1, {
      hint: 'pass the CA certificate of the CAS that wrote this log (--ca)',
    });
  }
  return parsed.data;
}

function parseLine(line: Line): unknown {
  if (!line.terminated) {
    throw fail('AUDIT_TRUNCATED', `the export ends inside line ${line.number} (no newline)`, line.number);
  }
  let json: unknown;
  try {
    json = JSON.parse(line.text);
  } catch {
    throw fail('AUDIT_FORMAT', `line ${line.number} is not JSON`, line.number);
  }
  // Hashes and signatures cover values, not bytes: only the writer's one spelling of them is accepted.
  if (JSON.stringify(json) !== line.text) {
    const seq = rawSeq(json);
    const where = seq === undefined ? `line ${line.number}` : at(line.number, seq);
    throw fail('AUDIT_FORMAT', `${where} is not as exported: it is not JSON.stringify of its value`, line.number, {
      seq,
      hint:
        'a line was re-encoded or edited (duplicate keys, another spelling of a number, spaces); ' +
        'verify the file exactly as exported',
    });
  }
  return json;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const issue = (e: { issues: Array<{ path: PropertyKey[]; message: string }> }) =>
  e.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)[0] ?? '';

/** The seq of a line that does not fit the schema, when it has a readable one (for the message). */
function rawSeq(json: unknown): number | undefined {
  return isObject(json) && typeof json['seq'] === 'number' ? json['seq'] : undefined;
}

function fail(
  code: AuditErrorCode,
  message: string,
  line: number,
  extra: { seq?: number | undefined; hint?: string } = {},
): AuditError {
  return new AuditError(code, message, {
    line,
    ...(extra.seq === undefined ? {} : { seq: extra.seq }),
    ...(extra.hint ? { hint: extra.hint } : {}),
  });
}

function at(line: number, seq: number): string {
  return `line ${line} (seq ${seq})`;
}

/** A seq beyond the expected one: removed entries, unless an earlier seq follows (then they were reordered). */
interface Ahead {
  line: number;
  seq: number;
  expected: number;
}

class ChainState {
  private last: AuditHead = { seq: 0, hash: ZERO_HASH };
  private lastLine = 1;
  private ahead: Ahead | undefined;
  private end: AuditExportTrailer | undefined;
  private readonly digest = new EntryDigest();

  constructor(
    private readonly keys: AuditKeys,
    private readonly header: string,
    private readonly opts: VerifyOptions,
  ) {}

  get done(): boolean {
    return this.end !== undefined;
  }

  entry(json: unknown, line: number): void {
    // The entry ahead of its place is the first bad line, whatever this one is.
    if (this.ahead) throw this.resolveAhead(rawSeq(json));
    const entry = this.authentic(json, line);
    this.order(entry, line);
    const seen = this.opts.lastSeenHead;
    if (seen && entry.seq === seen.seq && entry.hash !== seen.hash) {
      throw fail('AUDIT_ROLLBACK', `${at(line, entry.seq)} is not the entry of the head seen before: a fork`, line, {
        seq: entry.seq,
      });
    }
    this.last = { seq: entry.seq, hash: entry.hash };
    this.lastLine = line;
    this.digest.add(entry.hash);
  }

  /** Schema, hash and signature: the entry is as the CAS signed it. */
  private authentic(json: unknown, line: number): AuditEntry {
    const parsed = auditEntrySchema.safeParse(json);
    const seq = rawSeq(json);
    if (!parsed.success) {
      const where = seq === undefined ? `line ${line}` : at(line, seq);
      throw fail('AUDIT_FORMAT', `${where} is not an audit entry (${issue(parsed.error)})`, line, { seq });
    }
    const entry = parsed.data;
    if (entryHash(entry) !== entry.hash) {
      throw fail('AUDIT_EDITED', `${at(line, entry.seq)} was edited: its content does not hash to its hash`, line, {
        seq: entry.seq,
      });
    }
    const key = this.keys.get(entry.key);
    if (!key) {
      throw fail('AUDIT_CERTIFICATE', `${at(line, entry.seq)} is signed by key ${entry.key}, not in the header`, line, {
        seq: entry.seq,
      });
    }
    if (!signatureValid(entry.hash, entry.sig, key)) {
      throw fail('AUDIT_EDITED', `${at(line, entry.seq)} was edited: its signature does not verify`, line, {
        seq: entry.seq,
      });
    }
    return entry;
  }

  private order(entry: AuditEntry, line: number): void {
    const expected = this.last.seq + 1;
    if (entry.seq > expected) {
      this.ahead = { line, seq: entry.seq, expected };
      return;
    }
    if (entry.seq < expected) {
      const what = entry.hash === this.last.hash ? 'repeats the entry before it' : `comes after seq ${this.last.seq}`;
      throw fail('AUDIT_REORDERED', `${at(line, entry.seq)} ${what}`, line, { seq: entry.seq });
    }
    if (entry.prev !== this.last.hash) {
      throw fail('AUDIT_LINK', `${at(line, entry.seq)}: prev is not the hash of seq ${this.last.seq}`, line, {
        seq: entry.seq,
      });
    }
  }

  /** Decides what an entry ahead of its place was, once the next line (entry or trailer) is known. */
  private resolveAhead(nextSeq: number | undefined): AuditError {
    const { line, seq, expected } = this.ahead!;
    if (nextSeq !== undefined && nextSeq < seq) {
      return fail('AUDIT_REORDERED', `${at(line, seq)} comes before seq ${nextSeq}: entries were reordered`, line, {
        seq,
      });
    }
    const missing = seq - 1 === expected ? `seq ${expected} is` : `seq ${expected} to ${seq - 1} are`;
    return fail('AUDIT_REMOVED', `${at(line, seq)} follows seq ${expected - 1}: ${missing} missing`, line, { seq });
  }

  trailer(json: unknown, line: number): void {
    if (this.ahead) throw this.resolveAhead(undefined);
    const parsed = auditExportTrailerSchema.safeParse(json);
    if (!parsed.success) throw fail('AUDIT_FORMAT', `the trailer (line ${line}) ${issue(parsed.error)}`, line);
    const t = parsed.data;
    const key = this.keys.get(t.key);
    if (!key) throw fail('AUDIT_CERTIFICATE', `the trailer (line ${line}) is signed by a key not in the header`, line);
    if (!signatureValid(trailerHash(t), t.sig, key)) {
      throw fail('AUDIT_EDITED', `the trailer (line ${line}) was edited: its signature does not verify`, line);
    }
    this.checkHead(t, line);
    this.checkCover(t, line);
    this.end = t;
  }

  /** The trailer signed this header line and these entries, not those of another file of the same log. */
  private checkCover(t: AuditExportTrailer, line: number): void {
    if (t.header !== this.header) {
      throw fail('AUDIT_EDITED', `the header (line 1) is not the one the trailer (line ${line}) signed`, 1, {
        hint: 'the header was replaced or changed (certificates, CA); take the export from another copy',
      });
    }
    const cover = this.digest.cover(this.header);
    if (t.entries !== cover.entries || t.digest !== cover.digest) {
      const what = `vouches for other entries (${t.entries}, another digest) than the ${cover.entries} of this file`;
      throw fail('AUDIT_EDITED', `the trailer (line ${line}) ${what}`, line);
    }
  }

  private checkHead(t: AuditExportTrailer, line: number): void {
    const next = this.last.seq + 1;
    if (t.head.seq < this.last.seq) {
      const what = `entries up to seq ${this.last.seq} go beyond the trailer's head (seq ${t.head.seq})`;
      throw fail('AUDIT_EDITED', `${what} (line ${line})`, line, { seq: t.head.seq + 1 });
    }
    if (t.head.seq > this.last.seq) {
      throw fail(
        'AUDIT_TRUNCATED',
        `the trailer (line ${line}) states head seq ${t.head.seq}, but the entries end at seq ${this.last.seq}: ` +
          `seq ${next} on are missing`,
        line,
        { seq: next },
      );
    }
    if (t.head.hash !== this.last.hash) {
      throw fail('AUDIT_LINK', `the trailer (line ${line}) states another head hash than seq ${this.last.seq}`, line);
    }
    const seen = this.opts.lastSeenHead;
    if (seen && seen.seq > t.head.seq) {
      throw fail(
        'AUDIT_ROLLBACK',
        `the log ends at seq ${t.head.seq}, before the head seen before (seq ${seen.seq}): it was rolled back`,
        line,
        { seq: t.head.seq + 1 },
      );
    }
  }

  finish(): VerifiedExport {
    if (this.ahead) throw this.resolveAhead(undefined);
    if (!this.end) {
      const line = this.lastLine + 1;
      throw fail(
        'AUDIT_TRUNCATED',
        `the export ends after line ${this.lastLine} (seq ${this.last.seq}) without its signed trailer`,
        line,
        { seq: this.last.seq + 1 },
      );
    }
    return { head: this.end.head, entries: this.digest.count, exportedAt: this.end.time };
  }
}
