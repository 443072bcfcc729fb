import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditFollowers, followWindowMs } from './audit-follow.js';
import { memoryAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';

const started = { type: 'cas.started', replica: 'r2', version: '0', ca_fingerprint: 'a'.repeat(64) } as const;

describe('audit followers', () => {
  it('never wait past the request or idle timeout (a second below the lower), nor past 25 s', () => {
    assert.equal(followWindowMs({ requestTimeoutMs: 30_000, idleTimeoutMs: 60_000 }), 25_000);
    assert.equal(followWindowMs({ requestTimeoutMs: 5_000, idleTimeoutMs: 60_000 }), 4_000);
    assert.equal(followWindowMs({ requestTimeoutMs: 30_000, idleTimeoutMs: 3_000 }), 2_000);
    assert.equal(followWindowMs({ requestTimeoutMs: 500, idleTimeoutMs: 60_000 }), 0);
  });

  it("wake on an entry written past this process (another replica's), by polling the log", async () => {
    const log = memoryAuditLog();
    const followers = new AuditFollowers(log, { waitersPerClient: 1, waiters: 1, pollMs: 20 });
    let woke = false;
    const waiting = followers.until(0, Date.now() + 60_000, new AbortController().signal).then(() => (woke = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(woke, false, 'nothing written yet');
    await log.record(started);
    await waiting;
    followers.close();
  });

  it('refuse a waiter past the cap per client and in all (429 CAS_BUSY)', async () => {
    const followers = new AuditFollowers(memoryAuditLog(), { waitersPerClient: 1, waiters: 2, pollMs: 20 });
    const busy = (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429;
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const a = followers.slot('a', () => held);
    await assert.rejects(
      followers.slot('a', async () => undefined),
      busy,
    );
    const b = followers.slot('b', () => held);
    await assert.rejects(
      followers.slot('c', async () => undefined),
      busy,
    );
    release();
    await Promise.all([a, b]);
    await followers.slot('a', async () => undefined);
  });
});
