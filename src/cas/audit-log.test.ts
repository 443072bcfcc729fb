import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exportLines } from '../audit/export.js';
import { sampleEvent } from '../audit/testkit.js';
import type { AuditEntry, AuditEvent, AuditHead } from '../audit/types.js';
import { verifyAuditExport, type AuditError } from '../audit/index.js';
import { pemEncode } from '../secrets/index.js';
import { AUDIT_LIMITS, loadAuditKey, openAuditLog } from './audit-log.js';
import { loadOrCreateCa } from './identity.js';
import { openSqliteStore, type Store } from './store/index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-audit-log-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newStore = () => openSqliteStore({ dataDir: join(root, `d${n++}`), masterKey: randomBytes(32) });
const now = () => new Date();
/** A store whose CA exists, so that opening the log records one key.created (the audit key's) only. */
const storeWithCa = async () => {
  const store = newStore();
  await loadOrCreateCa(store, now());
  return store;
};

/** Counts the transactions (appendAudit calls) and their sizes; `gate` holds each until released. */
function spied(store: Store, gate?: () => Promise<void>) {
  const sizes: number[] = [];
  const append = store.appendAudit.bind(store);
  store.appendAudit = async (make: (h: AuditHead) => AuditEntry[]) => {
    await gate?.();
    const entries = await append(make);
    sizes.push(entries.length);
    return entries;
  };
  return sizes;
}

async function exported(store: Store): Promise<string> {
  const key = await loadAuditKey(store, now());
  const log = await openAuditLog(store, now);
  let text = '';
  const opts = { caFingerprint: key.caFingerprint, signer: key.signer, now: now() };
  for await (const line of exportLines(log, opts)) text += line;
  return text;
}

const caPemOf = async (store: Store) => pemEncode('CERTIFICATE', (await loadOrCreateCa(store, now())).certDer);

describe('openAuditLog', () => {
  it('makes the audit key once, records key.created once, and its export verifies against the CA', async () => {
    const store = newStore();
    const log = await openAuditLog(store, now);
    const [ca, first] = await log.read(0, 10);
    assert.deepEqual(ca?.event, {
      type: 'key.created',
      key: 'ca',
      fingerprint: ca?.event.type === 'key.created' ? ca.event.fingerprint : '',
    });
    assert.equal(first?.event.type, 'key.created');
    await log.record(sampleEvent(1));
    await log.close();
    const again = await openAuditLog(store, now);
    await again.record(sampleEvent(2));
    const types = (await again.read(0, 10)).map((e) => e.event.type);
    assert.deepEqual(types, ['key.created', 'key.created', 'value.read', 'attestation.refused']);
    assert.equal(new Set((await again.read(0, 10)).map((e) => e.key)).size, 1);
    const verified = await verifyAuditExport(await exported(store), { caPem: await caPemOf(store) });
    assert.deepEqual(verified.head, await again.head());
    assert.match((await again.certificates())[0]!, /BEGIN CERTIFICATE/);
    await again.close();
    await store.close();
  });

  it('commits events recorded during a transaction together, at most a batch per transaction', async (t) => {
    const store = await storeWithCa();
    const log = await openAuditLog(store, now);
    const sizes = spied(store);
    const events = Array.from({ length: 600 }, (_, i) => sampleEvent(i));
    const entries = await Promise.all(events.map((e) => log.record(e)));
    assert.deepEqual(
      entries.map((e) => e.seq),
      events.map((_, i) => i + 2),
    );
    assert.ok(sizes.length < 10, `transactions ${sizes.length}`);
    assert.ok(Math.max(...sizes) <= AUDIT_LIMITS.batch, `largest ${Math.max(...sizes)}`);
    t.diagnostic(`events 600, transactions ${sizes.length}, largest ${Math.max(...sizes)}`);
    await verifyAuditExport(await exported(store), { caPem: await caPemOf(store) });
    await log.close();
    await store.close();
  });

  it('refuses events beyond the queue bound, and after close, and events outside the schema', async () => {
    const store = await storeWithCa();
    const log = await openAuditLog(store, now);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => {
      entered = r;
    });
    spied(store, () => {
      entered();
      return held;
    });
    const saved = AUDIT_LIMITS.queue;
    AUDIT_LIMITS.queue = 5;
    try {
      const first = log.record(sampleEvent(0));
      await inFlight;
      const queued = Array.from({ length: 5 }, (_, i) => log.record(sampleEvent(i + 1)));
      await assert.rejects(log.record(sampleEvent(9)), (e: AuditError) => e.code === 'AUDIT_QUEUE_FULL');
      release();
      await Promise.all([first, ...queued]);
    } finally {
      AUDIT_LIMITS.queue = saved;
    }
    const bad = { type: 'value.read', session: '', secret: 's', actor: null } as AuditEvent;
    await assert.rejects(log.record(bad), (e: AuditError) => e.code === 'AUDIT_FORMAT' && /session/.test(e.message));
    await log.close();
    await assert.rejects(log.record(sampleEvent(1)), (e: AuditError) => e.code === 'AUDIT_CLOSED');
    assert.equal((await log.head()).seq, 7);
    await store.close();
  });

  it('rejects the callers of a failed transaction (they fail closed) and goes on with the next', async () => {
    const store = await storeWithCa();
    const log = await openAuditLog(store, now);
    let fail = true;
    spied(store, async () => {
      if (fail) throw new Error('disk full');
    });
    await assert.rejects(log.record(sampleEvent(1)), (e: AuditError) => e.code === 'AUDIT_STORE');
    fail = false;
    assert.equal((await log.record(sampleEvent(2))).seq, 2);
    await log.close();
    await store.close();
  });
});
