import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import type { ConnectionLimits } from './limits.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral } from './testing.js';

/** Three RSA-3072 keys: an upload that stays in progress for a while (key generation on the thread pool). */
const SLOW = (name: string) =>
  `name: ${name}\nsecrets:\n${Array.from({ length: 3 }, (_, i) => `  - {name: k${i}, kind: private-key, key_type: RSA-3072}`).join('\n')}\n`;
const QUICK = (name: string) => `name: ${name}\n`;
const head = (path: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: cas\r\nConnection: close\r\nContent-Length: ${length}\r\n\r\n`;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CAS session upload limits (real sockets)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-writes-'));
  const open: TLSSocket[] = [];
  let n = 0;
  const fresh = () => `w${n++}`;
  const withCas = async (limits: Partial<ConnectionLimits>, run: (cas: RunningCas) => Promise<void>) => {
    const cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: mkdtempSync(join(dir, 'cas-')), limits });
    try {
      await run(cas);
    } finally {
      for (const s of open.splice(0)) s.destroy();
      await cas.close();
    }
  };
  /** Connects from `localAddress`; resolves once the TLS handshake is done, with the answer to come. */
  const connect = async (cas: RunningCas, localAddress: string) => {
    const me = ephemeral();
    const ca = cas.identity.caCertPem;
    const options = { host: '127.0.0.1', port: cas.port, localAddress, ca, servername: 'localhost', ...me };
    // tls.connect hands localAddress on to net.connect; its type does not list it.
    const socket = tlsConnect({ ...options, cert: me.certPem, key: me.keyPem } as ConnectionOptions);
    open.push(socket);
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', () => {});
    const answer = new Promise<string>((resolve) => socket.once('close', () => resolve(data)));
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    return { socket, answer };
  };
  const upload = async (cas: RunningCas, localAddress: string, body: string, path = '/v1/sessions') => {
    const { socket, answer } = await connect(cas, localAddress);
    socket.write(`${head(path, Buffer.byteLength(body))}${body}`);
    return answer;
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  const inTime = { timeout: 20_000 };
  it('answers 429 while the same address has an upload in progress, not to another address', inTime, async () => {
    await withCas({ writeMsPerSecondPerAddress: 1_000_000 }, async (cas) => {
      const first = upload(cas, '127.0.0.1', SLOW(fresh()));
      await pause(100);
      assert.match(await upload(cas, '127.0.0.1', QUICK(fresh())), /^HTTP\/1.1 429[\s\S]*"code":"CAS_BUSY"/);
      const early = await connect(cas, '127.0.0.1');
      early.socket.write(head('/v1/sessions', 100_000)); // no body: a flood is refused before reading one
      const refusal = await Promise.race([early.answer, pause(3000).then(() => 'no answer within 3 s')]);
      assert.match(refusal, /^HTTP\/1.1 429[\s\S]*"code":"CAS_BUSY"/);
      assert.match(await upload(cas, '127.0.0.2', QUICK(fresh())), /^HTTP\/1.1 201/, 'another address: no 429');
      assert.match(await first, /^HTTP\/1.1 201/);
      assert.match(await upload(cas, '127.0.0.1', QUICK(fresh())), /^HTTP\/1.1 201/, 'room again');
    });
  });

  it('answers 429 to an upload from any address while the CAS has its cap in progress', async () => {
    await withCas({ maxWrites: 2, writeMsPerSecondPerAddress: 1_000_000 }, async (cas) => {
      const pending = [upload(cas, '127.0.0.1', SLOW(fresh())), upload(cas, '127.0.0.2', SLOW(fresh()), '/session')];
      await pause(150);
      const third = await upload(cas, '127.0.0.3', QUICK(fresh()), '/session');
      assert.match(third, /^HTTP\/1.1 429[\s\S]*the CAS already has 2 session uploads in progress/);
      for (const answer of await Promise.all(pending)) assert.match(answer, /^HTTP\/1.1 201/);
    });
  });

  it('holds the slot and charges the time until the work is done, whether or not the client hung up', async () => {
    // Burst 100 ms: three RSA-3072 keys take far longer; the 50 ms until the hang-up would not spend it.
    await withCas({ writeMsPerSecondPerAddress: 25 }, async (cas) => {
      const { socket } = await connect(cas, '127.0.0.1');
      const body = SLOW(fresh());
      socket.write(`${head('/v1/sessions', Buffer.byteLength(body))}${body}`);
      await pause(50);
      socket.destroy();
      await pause(50);
      let answer = await upload(cas, '127.0.0.1', QUICK(fresh()));
      assert.match(answer, /^HTTP\/1.1 429[\s\S]*already has 1 session uploads in progress/, 'the hang-up freed it');
      for (let i = 0; i < 200 && /uploads in progress/.test(answer); i++) {
        await pause(100);
        answer = await upload(cas, '127.0.0.1', QUICK(fresh()));
      }
      assert.match(answer, /^HTTP\/1.1 429[\s\S]*has used its upload time \(25 ms per second\)/);
      assert.match(await upload(cas, '127.0.0.2', QUICK(fresh())), /^HTTP\/1.1 201/, 'another address keeps its time');
    });
  });

  it('gives no slot to uploads whose body has not arrived: slow senders do not lock others out', async () => {
    await withCas({ maxWrites: 4 }, async (cas) => {
      for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
        const { socket } = await connect(cas, address);
        socket.write(`${head('/v1/sessions', 100_000)}name: x\n`);
      }
      await pause(200);
      assert.match(await upload(cas, '127.0.0.6', QUICK(fresh())), /^HTTP\/1.1 201/);
      // The slow body's own address too: its connection waits, it holds no upload slot.
      assert.match(await upload(cas, '127.0.0.2', QUICK(fresh())), /^HTTP\/1.1 201/);
    });
  });
});
