import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEntry } from '../contract/audit.js';
import { chainEntries, verifyAuditExport, type AuditError, type AuditHead } from './index.js';
import { exportText, MemoryLog, sampleEvent, testAuthority, trailerFor } from './testkit.js';

/**
 * Property test: random single changes to a real export of a few hundred entries — edits of any field (any byte of
 * a signature), deletions, swaps, duplications, truncations with and without the trailer, cut lines, rollbacks
 * and forks given the last seen head, the same values spelled otherwise, a changed header. Every one is
 * detected and the error names the first bad line (and seq).
 * Seeded, so a failure is reproduced by its trial number.
 */
const ENTRIES = 200;
const TRIALS = 400;
const authority = testAuthority();
const log = new MemoryLog(authority);
for (let i = 0; i < ENTRIES; i++) await log.record(sampleEvent(i));
const text = await exportText(log, authority);
const base = text.trimEnd().split('\n');
const opts = { caPem: authority.caPem };
/** Entry seq k is on line k + 1 (line 1 is the header); the trailer is on line ENTRIES + 2. */
const entry = (seq: number) => JSON.parse(base[seq]!) as AuditEntry;
const headAt = (seq: number): AuditHead => ({ seq, hash: entry(seq).hash });

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Trial {
  kind: string;
  text: string;
  lastSeen?: AuditHead;
  codes: string[];
  line: number;
  seq?: number;
}

type Rand = { int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T };

const join = (l: string[]) => `${l.join('\n')}\n`;
const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Another value of the same JSON type (so most edits stay within the schema and reach the hash check). */
function changed(value: unknown, r: Rand): unknown {
  if (typeof value === 'number') return value + r.int(1, 3);
  if (typeof value === 'boolean') return !value;
  if (value === null) return 'e'.repeat(64);
  if (Array.isArray(value)) return [...value, 'x'];
  const s = String(value);
  const i = r.int(0, Math.max(0, s.length - 1));
  const alphabet = /^[0-9a-f]+$/.test(s) ? HEX : B64;
  const c = [...alphabet].filter((x) => x !== s[i])[r.int(0, alphabet.length - 2)]!;
  return s.length === 0 ? 'x' : s.slice(0, i) + c + s.slice(i + 1);
}

function editTrial(r: Rand): Trial {
  const seq = r.int(1, ENTRIES);
  const e = entry(seq) as unknown as Record<string, unknown>;
  const event = e['event'] as Record<string, unknown>;
  const fields = [...Object.keys(e).filter((k) => k !== 'event'), ...Object.keys(event).map((k) => `event.${k}`)];
  const field = r.pick([...fields, 'sig-byte']);
  let edited: Record<string, unknown>;
  if (field === 'sig-byte') {
    const bytes = Buffer.from(String(e['sig']), 'base64');
    bytes[r.int(0, bytes.length - 1)]! ^= 1 << r.int(0, 7);
    edited = { ...e, sig: bytes.toString('base64') };
  } else if (field.startsWith('event.')) {
    const k = field.slice(6);
    edited = { ...e, event: { ...event, [k]: changed(event[k], r) } };
  } else edited = { ...e, [field]: changed(e[field], r) };
  const l = [...base];
  l[seq] = JSON.stringify(edited);
  const trial: Trial = { kind: `edit ${field}`, text: join(l), codes: ['AUDIT_EDITED', 'AUDIT_FORMAT'], line: seq + 1 };
  return field === 'seq' ? trial : { ...trial, seq };
}

function structuralTrial(r: Rand, kind: string): Trial {
  const l = [...base];
  const k = r.int(1, ENTRIES - 1);
  switch (kind) {
    case 'delete': {
      l.splice(k, 1);
      return { kind, text: join(l), codes: ['AUDIT_REMOVED'], line: k + 1, seq: k + 1 };
    }
    case 'delete-last': {
      l.splice(ENTRIES, 1);
      return { kind, text: join(l), codes: ['AUDIT_TRUNCATED'], line: ENTRIES + 1, seq: ENTRIES };
    }
    case 'swap': {
      const j = r.int(k + 1, ENTRIES);
      [l[k], l[j]] = [l[j]!, l[k]!];
      return { kind, text: join(l), codes: ['AUDIT_REORDERED'], line: k + 1, seq: j };
    }
    case 'duplicate': {
      const after = r.int(k, ENTRIES);
      l.splice(after + 1, 0, l[k]!);
      return { kind, text: join(l), codes: ['AUDIT_REORDERED'], line: after + 2, seq: k };
    }
    case 'truncate-keep-trailer': {
      const kept = [...l.slice(0, k + 1), l[l.length - 1]!];
      return { kind, text: join(kept), codes: ['AUDIT_TRUNCATED'], line: k + 2, seq: k + 1 };
    }
    case 'truncate': {
      const n = r.int(0, ENTRIES);
      return { kind, text: join(l.slice(0, n + 1)), codes: ['AUDIT_TRUNCATED'], line: n + 2, seq: n + 1 };
    }
    default: {
      const line = r.int(2, ENTRIES + 2);
      const start = l.slice(0, line - 1).join('\n').length + 1;
      const cut = start + r.int(1, l[line - 1]!.length - 1);
      return { kind: 'cut', text: text.slice(0, cut), codes: ['AUDIT_TRUNCATED'], line };
    }
  }
}

/** The same values spelled otherwise (hashes and signatures still match): refused as not the writer's line. */
function reencodeTrial(r: Rand): Trial {
  const seq = r.int(1, ENTRIES);
  const line = base[seq]!;
  const spellings = [
    (l: string) => l.replace(`"seq":${seq},`, `"seq":${seq}.0e0,`),
    (l: string) => l.replace('{"v":1,', '{"v":1,"v":1,'),
    (l: string) => l.replace('"prev":', '"prev": '),
    (l: string) => l.replace(/\}$/, ' }'),
    (l: string) => l.replace('"event":{"type":', '"event":{"type":"cas.started","type":'),
  ];
  const kind = r.int(0, spellings.length - 1);
  const l = [...base];
  l[seq] = spellings[kind]!(line);
  assert.notEqual(l[seq], line, `re-encoding ${kind} changed nothing`);
  return { kind: `reencode ${kind}`, text: join(l), codes: ['AUDIT_FORMAT'], line: seq + 1, seq };
}

/** A header changed (a certificate added, a line re-encoded): the trailer signed another header line. */
function headerTrial(r: Rand): Trial {
  const header = JSON.parse(base[0]!) as { certificates: string[] };
  const l = [...base];
  if (r.int(0, 1) === 0) {
    l[0] = JSON.stringify({ ...header, certificates: [...header.certificates, header.certificates[0]] });
    return { kind: 'header added', text: join(l), codes: ['AUDIT_EDITED'], line: 1 };
  }
  l[0] = base[0]!.replace('"version":', '"version": ');
  return { kind: 'header spelled', text: join(l), codes: ['AUDIT_FORMAT'], line: 1 };
}

/** An older export, signed at the time (a valid prefix), shown to a verifier that saw a later head. */
function rollbackTrial(r: Rand): Trial {
  const k = r.int(0, ENTRIES - 1);
  const head = k === 0 ? { seq: 0, hash: '0'.repeat(64) } : headAt(k);
  const older = [...base.slice(0, k + 1), trailerFor(base[0]!, base.slice(1, k + 1), head, authority.signer)];
  const lastSeen = headAt(r.int(k + 1, ENTRIES));
  return { kind: 'rollback', text: join(older), lastSeen, codes: ['AUDIT_ROLLBACK'], line: k + 2, seq: k + 1 };
}

/** A validly signed other history from seq f on (the CAS's key reused on a restored store), shown after the head. */
function forkTrial(r: Rand): Trial {
  const f = r.int(0, ENTRIES - 2);
  const from = f === 0 ? { seq: 0, hash: '0'.repeat(64) } : headAt(f);
  const events = Array.from({ length: ENTRIES - f }, (_, i) => sampleEvent(i + 1000));
  const fork = chainEntries(from, events, new Date(), authority.signer);
  const last = fork[fork.length - 1]!;
  const entries = [...base.slice(1, f + 1), ...fork.map((e) => JSON.stringify(e))];
  const trailer = trailerFor(base[0]!, entries, { seq: last.seq, hash: last.hash }, authority.signer);
  const lines = [base[0]!, ...entries, trailer];
  const seen = r.int(f + 1, ENTRIES);
  return {
    kind: 'fork',
    text: join(lines),
    lastSeen: headAt(seen),
    codes: ['AUDIT_ROLLBACK'],
    line: seen + 1,
    seq: seen,
  };
}

const KINDS = ['edit', 'delete', 'delete-last', 'swap', 'duplicate', 'truncate-keep-trailer', 'truncate', 'cut'];

function trialOf(n: number): Trial {
  const next = mulberry32(0x5eed + n);
  const r: Rand = {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
  const kind = r.pick([...KINDS, 'edit', 'edit', 'rollback', 'fork', 'reencode', 'header']);
  if (kind === 'edit') return editTrial(r);
  if (kind === 'reencode') return reencodeTrial(r);
  if (kind === 'header') return headerTrial(r);
  if (kind === 'rollback') return rollbackTrial(r);
  if (kind === 'fork') return forkTrial(r);
  return structuralTrial(r, kind);
}

describe('audit export tampering (seeded property test)', () => {
  it('verifies the untouched export of a few hundred entries', async () => {
    const verified = await verifyAuditExport(text, { ...opts, lastSeenHead: headAt(ENTRIES) });
    assert.equal(verified.entries, ENTRIES);
  });

  it(`detects ${TRIALS} random single changes and names the first bad line`, async (t) => {
    const counts = new Map<string, number>();
    for (let n = 0; n < TRIALS; n++) {
      const trial = trialOf(n);
      const kind = trial.kind.split(' ')[0]!;
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      const run = verifyAuditExport(trial.text, {
        ...opts,
        ...(trial.lastSeen ? { lastSeenHead: trial.lastSeen } : {}),
      });
      await assert.rejects(run, (e: AuditError) => {
        const where = `trial ${n} (${trial.kind}): ${e.code} ${e.message}`;
        assert.ok(trial.codes.includes(e.code), where);
        assert.equal(e.line, trial.line, where);
        if (trial.seq !== undefined) assert.equal(e.seq, trial.seq, where);
        return true;
      });
    }
    t.diagnostic(`trials ${TRIALS}, detected ${TRIALS}, ${[...counts].map(([k, c]) => `${k} ${c}`).join(', ')}`);
  });
});
