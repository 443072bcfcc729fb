import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditFollowers, followWindowMs } from './audit-follow.js';
import { AUDIT_LOOKUP_LIMIT, AUDIT_SCAN_LIMIT, follow, pageOf, visibility } from './audit-route.js';
import { memoryAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';
import type { Store } from './store/index.js';
import { clientIdentity } from './test-store.js';

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
    const followers = new AuditFollowers(log, { waitersPerClient: 1, waiters: 1, strangers: 1, pollMs: 20 });
    let woke = false;
    const waiting = followers.until(0, Date.now() + 60_000, new AbortController().signal).then(() => (woke = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(woke, false, 'nothing written yet');
    await log.record(started);
    await waiting;
    followers.close();
  });

  it('refuse a waiter past the cap per client and in all (429 CAS_BUSY)', async () => {
    const followers = new AuditFollowers(memoryAuditLog(), {
      waitersPerClient: 1,
      waiters: 2,
      strangers: 2,
      pollMs: 20,
    });
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

describe('follower slots', () => {
  const busy = (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429;

  it('let clients that may read no session hold only their share; owners and administrators still get one', async () => {
    const followers = new AuditFollowers(memoryAuditLog(), {
      waitersPerClient: 4,
      waiters: 3,
      strangers: 2,
      pollMs: 20,
    });
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const strangers = [followers.slot('s1', () => held, 'stranger'), followers.slot('s2', () => held, 'stranger')];
    await assert.rejects(
      followers.slot('s3', async () => undefined, 'stranger'),
      busy,
    );
    const owner = followers.slot('owner', () => held, 'reader');
    await assert.rejects(
      followers.slot('owner2', async () => undefined, 'reader'),
      busy,
    );
    // Administrators are not counted in `waiters`: a full CAS still lets them follow.
    await followers.slot('admin', async () => undefined, 'admin');
    release();
    await Promise.all([...strangers, owner]);
  });
});

describe('what one follow request may cost', () => {
  const started = (i: number) => ({ ...startedEvent, replica: `r${i}` });
  const startedEvent = { type: 'cas.started', replica: 'r', version: '0', ca_fingerprint: 'a'.repeat(64) } as const;
  const nobody = clientIdentity('nobody');
  const query = (after: number) => ({ after, limit: 100, wait: 25 }) as never;

  it('scans at most AUDIT_SCAN_LIMIT entries in all, then answers with next (not the whole log)', async () => {
    const log = memoryAuditLog();
    for (let i = 0; i < AUDIT_SCAN_LIMIT + 2_000; i++) await log.record(started(i));
    const followers = new AuditFollowers(log);
    const budget = { scanned: 0, lookups: 0 };
    const visible = visibility({ store: {} as Store }, nobody, false, budget);
    const f = { visible, budget, deadline: Date.now() + 3_000, query: query(0), signal: new AbortController().signal };
    // Other work gets turns while the scan runs: the memory log answers in microtasks, so only yields let it in.
    let turns = 0;
    let done = false;
    const turn = () => {
      turns++;
      if (!done) setImmediate(turn);
    };
    setImmediate(turn);
    let heads = 0;
    const counted = {
      ...log,
      head: () => {
        heads++;
        return log.head();
      },
    };
    const page = await follow({ audit: counted }, followers, f);
    done = true;
    followers.close();
    console.log(`scanned ${budget.scanned} of ${log.entries.length}, ${turns} turns for other work`);
    assert.ok(turns >= AUDIT_SCAN_LIMIT / 500 - 1, `${turns} turns`);
    assert.deepEqual(page, { entries: [], next: AUDIT_SCAN_LIMIT });
    assert.equal(budget.scanned, AUDIT_SCAN_LIMIT);
    assert.equal(heads, 0, 'answered at once, neither scanning on nor waiting');
  });

  it('asks the store about at most AUDIT_LOOKUP_LIMIT distinct sessions, then answers with next', async () => {
    const log = memoryAuditLog();
    const names = AUDIT_LOOKUP_LIMIT + 50;
    for (let i = 0; i < names; i++)
      await log.record({ type: 'value.read', session: `s${i}`, secret: 'x', actor: null });
    let asked = 0;
    const store = { current: async () => void asked++ } as unknown as Store;
    const budget = { scanned: 0, lookups: 0 };
    const { page, spent } = await pageOf({ audit: log }, visibility({ store }, nobody, false, budget), 0, 100, budget);
    console.log(`looked up ${asked} sessions of ${names}`);
    assert.equal(spent, true);
    assert.equal(asked, AUDIT_LOOKUP_LIMIT);
    assert.deepEqual(page, { entries: [], next: AUDIT_LOOKUP_LIMIT });
  });
});
