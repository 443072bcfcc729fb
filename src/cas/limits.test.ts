import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WriteBudget, addressKey, connectionLimits } from './limits.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral } from './testing.js';

const LIMITS = {
  handshakeTimeoutMs: 300,
  headersTimeoutMs: 600,
  requestTimeoutMs: 1200,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
  maxConnectionsPerAddress: 3,
  maxConnections: 5,
  maxWritesPerAddress: 1,
  maxWrites: 2,
  writeMsPerSecondPerAddress: 1_000_000,
};

/** Resolves when the socket closes, with the time it stayed open and whether it got through the handshake. */
function lifetime(socket: Socket): Promise<{ ms: number; secure: boolean; data: string }> {
  const started = Date.now();
  let secure = false;
  let data = '';
  socket.on('secureConnect', () => (secure = true));
  socket.on('data', (d: Buffer) => (data += d.toString()));
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - started, secure, data })));
}

describe('CAS connection limits (real sockets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-limits-'));
  let cas: RunningCas;
  const open: Socket[] = [];
  // Uploads and attestations act for a client: without a certificate they are refused (401) before the body.
  const me = ephemeral();
  const tls = (localAddress = '127.0.0.1'): TLSSocket => {
    // tls.connect hands localAddress on to net.connect; its type does not list it.
    const ca = cas.identity.caCertPem;
    const options = {
      host: '127.0.0.1',
      port: cas.port,
      localAddress,
      ca,
      servername: 'localhost',
      cert: me.certPem,
      key: me.keyPem,
    };
    const socket = tlsConnect(options as ConnectionOptions);
    open.push(socket);
    return socket;
  };
  const secured = (socket: TLSSocket) =>
    new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
  const drip = (socket: Socket, text: string, everyMs: number) => {
    const timer = setInterval(() => socket.writable && socket.write(text), everyMs);
    socket.once('close', () => clearInterval(timer));
  };
  const closeAll = async () => {
    for (const s of open.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 50)); // let the server see the closes before the next test counts
  };

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir, limits: LIMITS });
  });
  after(async () => {
    await closeAll();
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('cuts off a client that drips header bytes after the header timeout', { timeout: 5000 }, async () => {
    const socket = tls();
    const closed = lifetime(socket);
    await secured(socket);
    socket.write('GET /v1/version HTTP/1.1\r\nHost: cas\r\n');
    drip(socket, 'X', 50);
    const { ms, data } = await closed;
    assert.match(data, /^HTTP\/1.1 408 [\s\S]*"code":"CAS_REQUEST_TIMEOUT"[\s\S]*"hint":"send the headers within 600/);
    assert.ok(ms >= LIMITS.headersTimeoutMs - 50 && ms < LIMITS.headersTimeoutMs + 300, `open ${ms} ms`);
    await closeAll();
  });

  it('cuts off a client that drips the body after the request timeout', { timeout: 5000 }, async () => {
    const socket = tls();
    const closed = lifetime(socket);
    await secured(socket);
    socket.write('POST /v1/sessions HTTP/1.1\r\nHost: cas\r\nContent-Length: 100000\r\n\r\nname: x\n');
    drip(socket, '#', 50);
    const { ms, data } = await closed;
    assert.match(data, /^HTTP\/1.1 408 [\s\S]*"code":"CAS_REQUEST_TIMEOUT"/);
    assert.ok(ms >= LIMITS.requestTimeoutMs - 50 && ms < LIMITS.requestTimeoutMs + 300, `open ${ms} ms`);
    await closeAll();
  });

  it('cuts off a client that never finishes the TLS handshake', { timeout: 5000 }, async () => {
    const socket = tcpConnect({ host: '127.0.0.1', port: cas.port });
    open.push(socket);
    const { ms } = await lifetime(socket);
    assert.ok(ms >= LIMITS.handshakeTimeoutMs - 50 && ms < LIMITS.handshakeTimeoutMs + 300, `open ${ms} ms`);
    await closeAll();
  });

  it('refuses the connection over the per-address cap at once, while another address still gets in', async () => {
    const mine = [tls(), tls(), tls()];
    await Promise.all(mine.map(secured));
    const excess = tls();
    const refused = await lifetime(excess);
    assert.equal(refused.secure, false, 'no handshake for the connection over the cap');
    assert.ok(refused.ms < 300, `refused after ${refused.ms} ms`);
    const other = tls('127.0.0.2');
    const answered = lifetime(other);
    await secured(other);
    other.end('GET /v1/version HTTP/1.1\r\nHost: cas\r\nConnection: close\r\n\r\n');
    assert.match((await answered).data, /^HTTP\/1.1 200[\s\S]*"implementation":"veil"/);
    mine[0]!.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await secured(tls()); // a slot freed by a close is usable again
    await closeAll();
  });

  it('refuses the connection over the total cap, whichever address it comes from', async () => {
    const held = [tls('127.0.0.1'), tls('127.0.0.1'), tls('127.0.0.2'), tls('127.0.0.2'), tls('127.0.0.3')];
    await Promise.all(held.map(secured));
    const refused = await lifetime(tls('127.0.0.4'));
    assert.equal(refused.secure, false);
    await closeAll();
    await secured(tls('127.0.0.4'));
    await closeAll();
  });
});

describe('connection limit values', () => {
  it('are positive integers, the header timeout within the request timeout', () => {
    assert.throws(() => connectionLimits({ maxConnections: 0 }), /maxConnections must be a positive integer/);
    assert.throws(() => connectionLimits({ idleTimeoutMs: 1.5 }), /idleTimeoutMs/);
    const inverted = { headersTimeoutMs: 2000, requestTimeoutMs: 1000 };
    assert.throws(() => connectionLimits(inverted), /exceeds the request timeout/);
    assert.equal(connectionLimits({}).maxConnectionsPerAddress, 64);
  });

  it('give an address upload time at its rate, bursts of 4 s of it, and never touch another address', () => {
    let t = 0;
    const budget = new WriteBudget(250, () => t);
    assert.equal(budget.waitMs('a'), 0);
    budget.charge('a', 1200);
    assert.ok(budget.waitMs('a') > 800 && budget.waitMs('a') <= 801, `wait ${budget.waitMs('a')}`);
    assert.equal(budget.waitMs('b'), 0, 'another address keeps its budget');
    t = 801;
    assert.equal(budget.waitMs('a'), 0);
    t = 100_000;
    budget.charge('a', 10);
    assert.equal(budget.waitMs('a'), 0, 'refilled, capped at the burst');
    budget.charge('a', 990);
    assert.ok(budget.waitMs('a') > 0, 'the burst is 4 × 250 ms');
  });

  it('count IPv4-mapped addresses as IPv4 and IPv6 clients by their /64', () => {
    assert.equal(addressKey('::ffff:127.0.0.2'), '127.0.0.2');
    assert.equal(addressKey('2001:db8:0:1::5'), addressKey('2001:0db8:0000:0001:ffff:1:2:3'));
    assert.notEqual(addressKey('2001:db8:0:1::5'), addressKey('2001:db8:0:2::5'));
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
  });
});
