import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { ephemeral } from '../cas/testing.js';
import { openssl, scratch } from '../secrets/testkit.js';
import { CasClient } from './cas-client.js';

/** A TLS server for 127.0.0.1 that answers every request with `status` and a body that is not JSON. */
async function notACas(status: number): Promise<{ url: string; caPem: string; close: () => void }> {
  const { file } = scratch();
  const [key, cert] = [file('key.pem', ''), file('cert.pem', '')];
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=proxy',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-days',
    '1',
    '-keyout',
    key,
    '-out',
    cert,
  );
  const caPem = readFileSync(cert, 'utf8');
  const server = createServer({ key: readFileSync(key), cert: caPem }, (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/html' }).end('<html>secret=hunter2 bad gateway</html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}`, caPem, close: () => server.close() };
}

describe('the CLI CAS client', () => {
  for (const status of [200, 502]) {
    it(`refuses an answer that is not JSON (HTTP ${status}) with a catalogued code, without echoing it`, async () => {
      const server = await notACas(status);
      const who = ephemeral();
      const client = new CasClient({ url: server.url, fingerprint: '', caPem: server.caPem }, { ...who, keyHash: '' });
      try {
        await assert.rejects(client.readSession('x'), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'CLI_CAS_ERROR');
          assert.match(err.message, new RegExp(`not JSON \\(HTTP ${status}\\)`));
          assert.doesNotMatch(err.message, /hunter2/);
          return true;
        });
      } finally {
        await client.close();
        server.close();
      }
    });
  }
});
