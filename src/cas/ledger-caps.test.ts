import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { describe, it } from 'node:test';
import { AuditFollowers } from './audit-follow.js';
import { memoryAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';
import type { SlotKind, SlotLedger } from './ledger.js';
import { capConnections, limitWrites } from './limits.js';

/** A ledger whose answers the test gives, later (as a worker's, waiting on the primary). */
class DeferredLedger implements SlotLedger {
  readonly asked: Array<{ kind: SlotKind; key: string; cap: number; answer(ok: boolean): void }> = [];
  readonly given: Array<{ kind: SlotKind; key: string }> = [];
  take(kind: SlotKind, key: string, cap: number): Promise<boolean> {
    return new Promise((resolve) => this.asked.push({ kind, key, cap, answer: resolve }));
  }
  give(kind: SlotKind, key: string): void {
    this.given.push({ kind, key });
  }
}

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    setImmediate(() => this.emit('close'));
  }
  /** The client hangs up. */
  hangUp() {
    this.destroy();
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const busy = (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429;

function cappedServer(ledger: SlotLedger, limits = { maxConnections: 100, maxConnectionsPerAddress: 4 }) {
  const server = new EventEmitter();
  capConnections(server as unknown as Server, limits, ledger);
  return (address = '10.0.0.1') => {
    const socket = new FakeSocket(address);
    server.emit('connection', socket as unknown as Socket);
    return socket;
  };
}

describe('open connections with a ledger that answers later', () => {
  it('asks with the address and the per-address cap, keeps the socket meanwhile, destroys it on no', async () => {
    const ledger = new DeferredLedger();
    const connect = cappedServer(ledger);
    const socket = connect('::ffff:10.0.0.9');
    assert.deepEqual(
      ledger.asked.map(({ kind, key, cap }) => ({ kind, key, cap })),
      [{ kind: 'connection', key: '10.0.0.9', cap: 4 }],
    );
    assert.equal(socket.destroyed, false, 'the handshake may proceed while the primary decides');
    ledger.asked[0]!.answer(false);
    await tick();
    assert.equal(socket.destroyed, true);
    await tick();
    assert.deepEqual(ledger.given, [], 'a refused slot is not given back');
  });

  it('gives back a granted slot when the socket closes, once', async () => {
    const ledger = new DeferredLedger();
    const socket = cappedServer(ledger)();
    ledger.asked[0]!.answer(true);
    await tick();
    assert.equal(socket.destroyed, false);
    socket.hangUp();
    await tick();
    assert.deepEqual(ledger.given, [{ kind: 'connection', key: '10.0.0.1' }]);
  });

  it('gives back a yes that arrives after its socket closed (no leak)', async () => {
    const ledger = new DeferredLedger();
    const socket = cappedServer(ledger)();
    socket.hangUp();
    await tick();
    assert.deepEqual(ledger.given, []);
    ledger.asked[0]!.answer(true);
    await tick();
    assert.deepEqual(ledger.given, [{ kind: 'connection', key: '10.0.0.1' }]);
  });

  it('counts a connection waiting for its answer in the total of this process', async () => {
    const ledger = new DeferredLedger();
    const connect = cappedServer(ledger, { maxConnections: 2, maxConnectionsPerAddress: 4 });
    connect('10.0.0.1');
    connect('10.0.0.2');
    const third = connect('10.0.0.3');
    assert.equal(third.destroyed, true);
    assert.equal(ledger.asked.length, 2, 'over the total, the primary is not asked');
  });
});

describe('uploads with a ledger', () => {
  const LIMITS = { maxWrites: 4, maxWritesPerAddress: 2, writeMsPerSecondPerAddress: 1_000_000 };

  it('refuses (429) when the ledger says no, runs nothing, and frees its local count', async () => {
    const ledger = new DeferredLedger();
    const gate = limitWrites(LIMITS, ledger);
    let ran = false;
    const refused = gate('10.0.0.1', async () => {
      ran = true;
    });
    await tick();
    assert.deepEqual(
      ledger.asked.map(({ kind, key, cap }) => ({ kind, key, cap })),
      [{ kind: 'write', key: '10.0.0.1', cap: 2 }],
    );
    ledger.asked[0]!.answer(false);
    await assert.rejects(refused, busy);
    assert.equal(ran, false);
    assert.deepEqual(ledger.given, []);
    assert.equal(gate.refusal('10.0.0.1'), undefined, 'the refused upload holds no local slot');
  });

  it('runs the work on yes and gives the slot back when it settles, failed or not', async () => {
    const ledger = new DeferredLedger();
    const gate = limitWrites(LIMITS, ledger);
    const done = gate('10.0.0.1', async () => {
      throw new Error('bad session');
    });
    await tick();
    ledger.asked[0]!.answer(true);
    await assert.rejects(done, /bad session/);
    assert.deepEqual(ledger.given, [{ kind: 'write', key: '10.0.0.1' }]);
  });
});

describe('audit followers with a ledger', () => {
  const LIMITS = { waitersPerClient: 3, waiters: 1, strangers: 1, pollMs: 1_000 };

  it('refuses (429) when the ledger says no for the client key, and frees the total slot it held meanwhile', async () => {
    const ledger = new DeferredLedger();
    const followers = new AuditFollowers(memoryAuditLog(), LIMITS, ledger);
    const refused = followers.slot('key', async () => 'ran');
    assert.deepEqual(
      ledger.asked.map(({ kind, key, cap }) => ({ kind, key, cap })),
      [{ kind: 'follow', key: 'key', cap: 3 }],
    );
    await assert.rejects(
      followers.slot('other', async () => 'ran'),
      busy,
      'the waiting one holds its total slot',
    );
    ledger.asked[0]!.answer(false);
    await assert.rejects(refused, busy);
    const next = followers.slot('other', async () => 'ran');
    ledger.asked[1]!.answer(true);
    assert.equal(await next, 'ran');
    assert.deepEqual(ledger.given, [{ kind: 'follow', key: 'other' }]);
    followers.close();
  });
});
