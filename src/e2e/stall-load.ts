/**
 * The hostile client of cas-stall.e2e.test: from one address, the most expensive requests the CAS's limits
 * allow, until SIGTERM — then it prints what it got as JSON. Run as its own process so that its own work
 * does not slow the measuring client's event loop.
 *   node dist/e2e/stall-load.js URL CA_FILE LOCAL_ADDRESS
 */
import { readFileSync } from 'node:fs';
import { connect, type ConnectionOptions } from 'node:tls';
import { Agent, request } from 'undici';
import { ephemeral, type Identity } from '../cas/testing.js';

/** 64 connections in all, the per-address cap; STALL_LOAD_<PART>=n changes a part when looking for a cost. */
const LOAD_SHAPE = Object.fromEntries(
  Object.entries({ uploads: 16, slow: 40, sameKeyNonces: 4, freshKeyNonces: 4 }).map(([part, n]) => [
    part,
    Number(process.env[`STALL_LOAD_${part.toUpperCase()}`] ?? n),
  ]),
) as Record<string, number>;

const [url = '', caFile = '', localAddress = '127.0.0.1'] = process.argv.slice(2);
const ca = readFileSync(caFile, 'utf8');
const counts: Record<string, number> = {};
const count = (what: string) => (counts[what] = (counts[what] ?? 0) + 1);
let running = true;
const held = new Set<{ destroy(): void }>();

/**
 * The costliest session the limits allow: as many RSA-3072 keys as a session may have (8, SESSION_LIMITS), each
 * certified by an RSA-3072 CA, so that every certificate is an RSA signature too.
 */
function expensiveSession(name: string): string {
  const leaves = Array.from({ length: 7 }, (_, i) => [
    `  - {name: k${i}, kind: private-key, key_type: RSA-3072}`,
    `  - {name: c${i}, kind: x509, private_key: k${i}, issuer: ca, dns: [s${i}.example]}`,
  ]).flat();
  return [
    `name: ${name}`,
    'secrets:',
    '  - {name: ca_key, kind: private-key, key_type: RSA-3072}',
    '  - {name: ca, kind: x509-ca, private_key: ca_key}',
    '  - {name: pw, kind: ascii, size: 32}',
    ...leaves,
    '',
  ].join('\n');
}

function agentFor(who: Identity, connections: number): Agent {
  return new Agent({ connections, localAddress, connect: { ca, cert: who.certPem, key: who.keyPem } });
}

async function call(agent: Agent, path: string, body: string, what: string): Promise<unknown> {
  try {
    const res = await request(`${url}${path}`, { method: 'POST', body, dispatcher: agent });
    const json = await res.body.json().catch(() => undefined);
    count(`${what} ${res.statusCode}`);
    return json;
  } catch {
    count(`${what} connection refused/reset`);
    await new Promise((r) => setTimeout(r, 20));
    return undefined;
  }
}

async function uploads(): Promise<void> {
  const agent = agentFor(ephemeral(), LOAD_SHAPE['uploads']!);
  let n = 0;
  await Promise.all(
    Array.from({ length: LOAD_SHAPE['uploads']! }, async () => {
      while (running) await call(agent, '/v1/sessions', expensiveSession(`load-${process.pid}-${n++}`), 'upload');
    }),
  );
  await agent.close();
}

/** Nonce, then an attestation with that nonce and worthless evidence: each spends a nonce. */
async function nonceRound(agent: Agent, what: string): Promise<void> {
  const answer = (await call(agent, '/v1/attest/nonce', '', `${what} nonce`)) as { nonce?: unknown } | undefined;
  const nonce = answer?.nonce;
  if (typeof nonce !== 'string') return;
  const evidence = {
    type: 'simulation',
    measurement: '00'.repeat(32),
    reportData: '00'.repeat(32),
    hostSpki: 'AA==',
    signature: 'AA==',
  };
  await call(agent, '/v1/attest', JSON.stringify({ config_id: 'victim/api', nonce, evidence }), `${what} attest`);
}

async function sameKeyNonces(): Promise<void> {
  const agent = agentFor(ephemeral(), LOAD_SHAPE['sameKeyNonces']!);
  await Promise.all(
    Array.from({ length: LOAD_SHAPE['sameKeyNonces']! }, async () => {
      while (running) await nonceRound(agent, 'same-key');
    }),
  );
  await agent.close();
}

/** A fresh key per round: a new TLS handshake each time, and a nonce spent under a new key. */
async function freshKeyNonces(): Promise<void> {
  await Promise.all(
    Array.from({ length: LOAD_SHAPE['freshKeyNonces']! }, async () => {
      while (running) {
        const agent = agentFor(ephemeral(), 1);
        await nonceRound(agent, 'fresh-key');
        await agent.destroy();
      }
    }),
  );
}

/** Header bytes dripped once a second: held until the header timeout cuts it, then opened again. */
function slowConnection(): Promise<void> {
  return new Promise((resolve) => {
    const { hostname: host, port } = new URL(url);
    // tls.connect hands localAddress on to net.connect; its type does not list it.
    const options = { host, port: Number(port), ca, localAddress, servername: 'localhost' };
    const socket = connect(options as ConnectionOptions);
    const timer = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 1000);
    socket.once('secureConnect', () => socket.write('POST /v1/sessions HTTP/1.1\r\nHost: cas\r\n'));
    socket.on('error', () => {});
    held.add(socket);
    socket.once('close', () => {
      held.delete(socket);
      clearInterval(timer);
      count('slow connection closed by the CAS');
      resolve();
    });
  });
}

async function slow(): Promise<void> {
  await Promise.all(
    Array.from({ length: LOAD_SHAPE['slow']! }, async () => {
      while (running) {
        await slowConnection();
        if (running) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
}

process.once('SIGTERM', () => {
  running = false;
  for (const socket of held) socket.destroy();
});
const all = Promise.all([uploads(), sameKeyNonces(), freshKeyNonces(), slow()]);
process.stdout.write('load running\n');
await all;
process.stdout.write(`${JSON.stringify(counts)}\n`);
