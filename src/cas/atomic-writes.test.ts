import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exportLines } from '../audit/export.js';
import { verifyAuditExport } from '../audit/index.js';
import { sampleEvent } from '../audit/testkit.js';
import type { AuditEntry, AuditHead } from '../audit/types.js';
import { pemEncode } from '../secrets/index.js';
import { loadAuditKey, openAuditLog } from './audit-log.js';
import { failingAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';
import { identityFromPem } from './identity-of.js';
import { loadOrCreateCa } from './identity.js';
import { writeSession, type CasContext } from './sessions.js';
import { openSqliteStore, type Store } from './store/index.js';
import { ephemeral } from './testing.js';

/** A session write and its audit entry are one transaction: both or neither, whatever fails. */
const root = mkdtempSync(join(tmpdir(), 'veil-atomic-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const now = () => new Date();
const alice = identityFromPem(ephemeral().certPem);
const code = (want: string) => (e: CasError) => e.code === want;
const text = (name: string, predecessor?: string) =>
  [`name: ${name}`, ...(predecessor ? [`predecessor: ${predecessor}`] : []), 'services: []', ''].join('\n');

async function opened() {
  const store = openSqliteStore({ dataDir: join(root, `d${n++}`), masterKey: randomBytes(32) });
  const audit = await openAuditLog(store, now);
  after(async () => {
    await audit.close();
    await store.close();
  });
  return { store, audit, ctx: { store, now, audit } satisfies CasContext };
}

async function verifiedHead(store: Store): Promise<AuditHead> {
  const key = await loadAuditKey(store, now());
  const log = await openAuditLog(store, now);
  let exported = '';
  for await (const line of exportLines(log, { caFingerprint: key.caFingerprint, signer: key.signer, now: now() })) {
    exported += line;
  }
  const caPem = pemEncode('CERTIFICATE', (await loadOrCreateCa(store, now())).certDer);
  return (await verifyAuditExport(exported, { caPem })).head;
}

const writesOf = (entries: AuditEntry[]) =>
  entries.flatMap((e) => (e.event.type === 'session.created' || e.event.type === 'session.updated' ? [e.event] : []));

describe('a session version and its audit entry, one transaction', () => {
  it('stores the version with its entry, chained with the group-committed ones; the export verifies', async () => {
    const { store, audit, ctx } = await opened();
    const [created] = await Promise.all([writeSession(ctx, text('a'), alice), audit.record(sampleEvent(1))]);
    const updated = await writeSession(ctx, text('a', created.hash), alice);
    const writes = writesOf(await store.readAudit(0, 100));
    assert.deepEqual(
      writes.map((e) => [e.type, e.old_hash, e.new_hash]),
      [
        ['session.created', null, created.hash],
        ['session.updated', created.hash, updated.hash],
      ],
    );
    assert.deepEqual(await verifiedHead(store), await store.auditHead());
  });

  it('stores no version when the entry cannot be made in its transaction, nor when the log is closed', async () => {
    const { store, audit, ctx } = await opened();
    const before = await store.auditHead();
    await assert.rejects(writeSession({ ...ctx, audit: failingAuditLog() }, text('b'), alice), (e: CasError) => {
      assert.equal(e.code, 'CAS_AUDIT_UNAVAILABLE');
      assert.equal(e.status, 503);
      return true;
    });
    assert.equal(await store.current('b'), undefined);
    await audit.close();
    await assert.rejects(writeSession(ctx, text('c'), alice), code('CAS_AUDIT_UNAVAILABLE'));
    assert.equal(await store.current('c'), undefined);
    assert.deepEqual(await store.auditHead(), before);
  });

  it('writes no entry for a write refused by the store (a stale predecessor, a lost race)', async () => {
    const { store, ctx } = await opened();
    const first = await writeSession(ctx, text('d'), alice);
    const before = await store.auditHead();
    const racing = await Promise.allSettled([
      writeSession(ctx, text('d', first.hash), alice),
      writeSession(ctx, `${text('d', first.hash)}# another\n`, alice),
    ]);
    assert.deepEqual(racing.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    await assert.rejects(writeSession(ctx, text('d', first.hash), alice), code('CAS_STALE_PREDECESSOR'));
    assert.equal((await store.auditHead()).seq, before.seq + 1);
  });
});

describe('withEntry and the group commit: one transaction on the tail at a time', () => {
  it('waits for the batch in flight, and holds the next one until the write is done', async () => {
    const { store, audit } = await opened();
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => {
      entered = r;
    });
    const append = store.appendAudit.bind(store);
    store.appendAudit = async (make: (h: AuditHead) => AuditEntry[]) => {
      order.push('batch');
      entered();
      await held;
      return append(make);
    };
    const first = audit.record(sampleEvent(1));
    await inFlight;
    const event = { type: 'session.created', session: 'e', actor: alice.keyHash, old_hash: null } as const;
    const write = audit.withEntry({ ...event, new_hash: '1'.repeat(64) }, async (make) => {
      order.push('write');
      await new Promise((r) => setTimeout(r, 20));
      const later = audit.record(sampleEvent(2));
      order.push('write done');
      return { make, later };
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, ['batch']);
    release();
    await first;
    const { later } = await write;
    assert.equal((await later).seq, (await first).seq + 1);
    assert.deepEqual(order, ['batch', 'write', 'write done', 'batch']);
  });
});

/** Writes sessions in a loop, printing each acknowledged name, until killed. */
const WRITER = `
const [dir, key] = process.argv.slice(2);
const { openSqliteStore } = await import(new URL('./store/index.js', process.env.BASE).href);
const { openAuditLog } = await import(new URL('./audit-log.js', process.env.BASE).href);
const { writeSession } = await import(new URL('./sessions.js', process.env.BASE).href);
const { identityFromPem } = await import(new URL('./identity-of.js', process.env.BASE).href);
const { ephemeral } = await import(new URL('./testing.js', process.env.BASE).href);
const store = openSqliteStore({ dataDir: dir, masterKey: Buffer.from(key, 'hex') });
const ctx = { store, now: () => new Date(), audit: await openAuditLog(store, () => new Date()) };
const client = identityFromPem(ephemeral().certPem);
for (let i = 0; ; i++) {
  await writeSession(ctx, 'name: k' + i + '\\nservices: []\\n', client);
  process.stdout.write('k' + i + '\\n');
}`;

describe('a CAS killed while it writes', () => {
  it('leaves every version with its entry and no entry without its version (SIGKILL)', async (t) => {
    const dataDir = join(root, `d${n++}`);
    const key = randomBytes(32);
    const script = join(root, 'writer.mjs');
    writeFileSync(script, WRITER);
    const env = { ...process.env, BASE: new URL('./', import.meta.url).href };
    const child = spawn(process.execPath, [script, dataDir, key.toString('hex')], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > 40) child.kill('SIGKILL');
    });
    await new Promise((r) => child.once('exit', r));
    const store = openSqliteStore({ dataDir, masterKey: key });
    after(() => store.close());
    const versions = (await store.list()).map((v) => `${v.name} ${v.hash}`).sort();
    const entries = writesOf(await store.readAudit(0, 1000))
      .map((e) => `${e.session} ${e.new_hash}`)
      .sort();
    assert.deepEqual(entries, versions);
    const acknowledged = out.split('\n').filter(Boolean);
    for (const name of acknowledged)
      assert.ok(
        versions.some((v) => v.startsWith(`${name} `)),
        name,
      );
    assert.deepEqual(await verifiedHead(store), await store.auditHead());
    t.diagnostic(`acknowledged ${acknowledged.length}, versions ${versions.length}, entries ${entries.length}`);
  });
});
