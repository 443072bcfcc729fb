import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, describe, it } from 'node:test';
import type { AuditEntry } from '../../audit/types.js';
import { record, testReaders } from './contract-cases.js';
import { type StoreError, loadMasterKey, openSqliteStore } from './index.js';
import { BUSY_WAIT, pauseOf, type BusyWait } from './sqlite-busy.js';

const root = mkdtempSync(join(tmpdir(), 'veil-busy-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A store and a second connection to its file, as another CAS worker or a veil cas command has. */
function lockedStore(busyWait: Partial<BusyWait> = {}) {
  const dataDir = join(root, `d${n++}`);
  const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }), readers: testReaders, busyWait });
  const other = new Database(join(dataDir, 'cas.db'));
  after(async () => {
    other.close();
    await store.close();
  });
  const lock = () => other.exec('BEGIN IMMEDIATE');
  const release = () => other.exec('COMMIT');
  return { store, lock, release };
}

/**
 * Releases the other connection's lock from a timer tick, `ticks` ticks from now: a store call can succeed only
 * if this process's event loop kept running while it waited.
 */
function releaseAfterTicks(release: () => void, ticks: number): { ran: () => number } {
  let ran = 0;
  const timer = setInterval(() => {
    ran++;
    if (ran === ticks) {
      clearInterval(timer);
      release();
    }
  }, 1);
  return { ran: () => ran };
}

/**
 * Shorter than SQLite's old 5 s busy_timeout: a store whose calls block inside SQLite would hold the loop, so the
 * release below could never run, and its first attempt alone would outlast this deadline.
 */
const SHORT = { deadlineMs: 4_000 };

const entry = (seq: number, prev: string): AuditEntry => ({ seq, prev, hash: 'a'.repeat(64) }) as AuditEntry;

describe('the SQLite store while another process holds the write lock', () => {
  it('lets the event loop run while an append waits, and appends once the lock is released', async () => {
    const { store, lock, release } = lockedStore(SHORT);
    lock();
    const ticks = releaseAfterTicks(release, 3);
    assert.deepEqual(await store.append(record('waited', 'h1'), null), { ok: true });
    assert.ok(ticks.ran() >= 3);
    assert.equal((await store.current('waited'))?.hash, 'h1');
  });

  it('waits the same way to append audit entries, store a blob and store a renewal', async () => {
    const { store, lock, release } = lockedStore(SHORT);
    lock();
    releaseAfterTicks(release, 3);
    const appended = await store.appendAudit((head) => [entry(head.seq + 1, head.hash)]);
    assert.equal(appended[0]?.seq, 1);
    lock();
    releaseAfterTicks(release, 3);
    assert.deepEqual(await store.putBlobIfAbsent('blob', Buffer.from('v')), Buffer.from('v'));
    lock();
    releaseAfterTicks(release, 3);
    const renewal = { generation: 1, value: Buffer.from('r') };
    assert.deepEqual(await store.putRenewal('s', 'h', 'crt', renewal), renewal);
  });

  it('fails with STORE_BUSY past its deadline, having written nothing, and the same append succeeds later', async () => {
    // Pauses pass at once on this clock; the time SQLite itself spends in a call still counts.
    let slept = 0;
    const started = performance.now();
    const pauses: number[] = [];
    const clock = {
      random: () => 0.5,
      now: () => slept + (performance.now() - started),
      sleep: async (ms: number) => {
        pauses.push(ms);
        slept += ms;
        await new Promise((resolve) => setImmediate(resolve));
      },
    };
    const { store, lock, release } = lockedStore({ deadlineMs: 5_000, ...clock });
    lock();
    try {
      await assert.rejects(store.append(record('late', 'h1'), null), (e: StoreError) => {
        assert.equal(e.code, 'STORE_BUSY');
        assert.match(e.message, /stayed locked by another writer for 5000 ms; nothing was changed/);
        assert.match(e.hint ?? '', /another worker of this CAS/);
        return true;
      });
    } finally {
      release();
    }
    // The wait is the deadline (less the attempts' own time), in pauses that grow and never pass the ceiling.
    const waited = pauses.reduce((a, b) => a + b, 0);
    assert.ok(waited > 4_000 && waited <= 5_000, String(pauses));
    assert.ok(pauses.length > 10 && pauses.every((p) => p <= BUSY_WAIT.maxDelayMs), String(pauses));
    assert.equal(await store.current('late'), undefined);
    assert.deepEqual(await store.append(record('late', 'h1'), null), { ok: true });
    assert.equal((await store.current('late'))?.hash, 'h1');
  });

  it('reads without waiting: WAL readers do not need the write lock', async () => {
    const { store, lock, release } = lockedStore({
      sleep: () => Promise.reject(new Error('a read waited for the write lock')),
    });
    await store.append(record('read', 'h1'), null);
    lock();
    try {
      assert.equal((await store.current('read'))?.hash, 'h1');
      assert.deepEqual([...(await store.heads(['read']))], [['read', 'h1']]);
      assert.equal(await store.countSessions(), 1);
    } finally {
      release();
    }
  });
});

describe('the pause between two attempts', () => {
  const at = (random: number): BusyWait => ({ ...BUSY_WAIT, random: () => random });

  it('doubles from firstDelayMs up to maxDelayMs, and is jittered between half its ceiling and its ceiling', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 10].map((attempt) => pauseOf(attempt, at(0))),
      [0.5, 1, 2, 4, BUSY_WAIT.maxDelayMs / 2],
    );
    assert.equal(pauseOf(3, at(0.999_999)) < 8, true);
    assert.equal(pauseOf(3, at(0.999_999)) > 7.99, true);
    assert.equal(pauseOf(30, at(0.5)), BUSY_WAIT.maxDelayMs * 0.75);
  });
});
