import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { alive, startCas, tempDir, waitFor, type CasProcess } from './harness.js';

/**
 * `veil cas serve --workers 2`: the cap on open connections per client address holds for both workers
 * together (the primary's ledger), not per worker (which would let one address hold twice the cap).
 */

const CAP = 4;

interface Held {
  socket: TLSSocket;
  closed: boolean;
  /** The worker that answered this connection's last /healthz. */
  worker?: number;
  /** GET /healthz on this connection: the worker that answered, or undefined once the connection is gone. */
  health(): Promise<number | undefined>;
}

/** A kept-alive TLS connection from 127.0.0.1 (no client certificate: /healthz needs none). */
function open(url: string): Promise<Held> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false });
    let buffered = '';
    let waiting: ((worker: number | undefined) => void) | undefined;
    const held: Held = {
      socket,
      closed: false,
      health: () =>
        new Promise((answer) => {
          if (held.closed) return answer(undefined);
          waiting = answer;
          buffered = '';
          socket.write('GET /healthz HTTP/1.1\r\nHost: cas\r\n\r\n');
        }),
    };
    socket.on('data', (d: Buffer) => {
      buffered += d.toString();
      const end = buffered.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(buffered)?.[1];
      if (end < 0 || length === undefined || buffered.length < end + 4 + Number(length)) return;
      const worker = (JSON.parse(buffered.slice(end + 4, end + 4 + Number(length))) as { worker?: number }).worker;
      waiting?.(worker);
      waiting = undefined;
    });
    socket.on('error', () => {});
    socket.once('close', () => {
      held.closed = true;
      waiting?.(undefined);
      resolve(held);
    });
    socket.once('secureConnect', () => resolve(held));
  });
}

/** Opens `n` connections at once; answers those a worker answers on, after each was tried twice. */
async function openMany(url: string, n: number): Promise<Held[]> {
  const all = await Promise.all(Array.from({ length: n }, () => open(url)));
  await Promise.all(all.map((h) => h.health()));
  // A refusal may come after the handshake (the worker asks the primary meanwhile): the second round is
  // after every connection's first answer, long after any refusal.
  const second = await Promise.all(all.map((h) => h.health()));
  all.forEach((h, i) => {
    if (second[i] !== undefined) h.worker = second[i];
  });
  const kept = all.filter((_, i) => second[i] !== undefined);
  for (const h of all) if (!kept.includes(h)) h.socket.destroy();
  return kept;
}

function pidsOf(cas: CasProcess): number[] {
  const m = /2 worker processes \(pids (\d+), (\d+)\)/.exec(cas.log());
  assert.ok(m, cas.log());
  return [Number(m[1]), Number(m[2])];
}

const closeAll = (held: Held[]) => {
  for (const h of held) h.socket.destroy();
};

describe('caps per client address across two CAS workers', () => {
  const dir = tempDir('veil-ledger-');
  let cas: CasProcess;

  before(async () => {
    const args = ['--workers', '2', '--max-connections-per-address', String(CAP), '--keep-alive-timeout', '30000'];
    cas = await startCas(join(dir.path, 'data'), dir.path, args);
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it(`keeps at most ${CAP} connections of one address open on both workers together, not ${2 * CAP}`, async () => {
    const kept = await openMany(cas.url, 3 * CAP);
    assert.equal(kept.length, CAP, `${kept.length} connections stayed open`);
    closeAll(kept);
  });

  it('frees the slots of closed connections for new ones', async () => {
    let kept: Held[] = [];
    // The workers give the slots back as they see the connections close: bounded retries, no timing.
    for (let i = 0; i < 40 && kept.length < CAP; i++) {
      closeAll(kept);
      await new Promise((r) => setTimeout(r, 50));
      kept = await openMany(cas.url, CAP);
    }
    assert.equal(kept.length, CAP);
    // Connections opened at once are dealt to the workers in turn: one address reaches both, so the cap held
    // above is the ledger's, not each worker's own count.
    assert.deepEqual(new Set(kept.map((h) => h.worker)), new Set([1, 2]));
    closeAll(kept);
  });

  it("frees every slot a killed worker held once it exits; its replacement serves the address's full cap", async () => {
    let kept: Held[] = [];
    const workers = async () => Promise.all(kept.map((h) => h.health()));
    for (let i = 0; i < 40; i++) {
      closeAll(kept);
      await new Promise((r) => setTimeout(r, 50));
      kept = await openMany(cas.url, CAP);
      if (kept.length === CAP && (await workers()).includes(2)) break;
    }
    const on2 = (await workers()).filter((w) => w === 2).length;
    assert.ok(on2 > 0, 'a connection held on worker 2');
    const victim = pidsOf(cas)[1]!;
    process.kill(victim, 'SIGKILL');
    await waitFor(
      () => !alive(victim) && /CAS worker exited; replaced/.test(cas.log()),
      15_000,
      () => `worker ${victim} not replaced: ${cas.log()}`,
    );
    // Keep the connections to worker 1 open: only the dead worker's slots may have come free.
    const left = () => kept.filter((h) => !h.closed);
    await waitFor(
      () => left().length === CAP - on2,
      5_000,
      () => `${left().length} connections left open`,
    );
    const survivors = left();
    let more: Held[] = [];
    for (let i = 0; i < 40 && more.length < on2; i++) {
      closeAll(more);
      await new Promise((r) => setTimeout(r, 100));
      more = await openMany(cas.url, on2);
    }
    assert.equal(more.length, on2, "the dead worker's slots came free");
    const extra = await openMany(cas.url, 1);
    assert.equal(extra.length, 0, 'and no more than that: the cap still holds');
    closeAll([...survivors, ...more]);
  });
});
