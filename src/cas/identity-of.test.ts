import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { identityFromPem, identityOfSocket, peerCertificateOfSocket } from './identity-of.js';
import { testChain } from '../secrets/test-chain.js';
import { accessEntries } from '../policy/index.js';
import { ephemeral, type Identity } from './testing.js';

const keyHashOf = (who: Identity) => createHash('sha256').update(who.spki).digest('hex');

/** A bare TLS server that answers each request with the key hash of the identity cached for its socket. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const own = ephemeral();
  const server = createServer(
    { key: own.keyPem, cert: own.certPem, requestCert: true, rejectUnauthorized: false },
    (req, res) => res.end(identityOfSocket(req.socket as TLSSocket)?.keyHash ?? 'none'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** One connection, several requests on it (keep-alive), so a cached identity is read back. */
function connection(
  port: number,
  who: Pick<Identity, 'keyPem' | 'certPem'> | undefined,
  maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3',
) {
  const socket = connect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    maxVersion,
    ...(who ? { key: who.keyPem, cert: who.certPem } : {}),
  });
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
  });
  const ask = async (): Promise<string> => {
    buffered = '';
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    for (;;) {
      const match = /\r\n\r\n([0-9a-f]{64}|none)$/.exec(buffered);
      if (match) return match[1] as string;
      if (socket.destroyed) throw new Error('connection closed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  return { socket, ask, ready: new Promise((resolve) => socket.once('secureConnect', resolve)) };
}

describe('client identity cached per connection', () => {
  it('gives two connections with different certificates their own identities, interleaved', async () => {
    const { server, port } = await echoServer();
    const alice = ephemeral();
    const bob = ephemeral();
    const a = connection(port, alice);
    const b = connection(port, bob);
    const anonymous = connection(port, undefined);
    await Promise.all([a.ready, b.ready, anonymous.ready]);
    try {
      assert.equal(await a.ask(), keyHashOf(alice));
      assert.equal(await b.ask(), keyHashOf(bob));
      assert.equal(await anonymous.ask(), 'none', 'a cached identity never leaks to a socket without a certificate');
      assert.equal(await a.ask(), keyHashOf(alice), 'the second request on a connection reads its own cached identity');
      assert.equal(await b.ask(), keyHashOf(bob));
      assert.equal(await anonymous.ask(), 'none');
    } finally {
      for (const c of [a, b, anonymous]) c.socket.destroy();
      server.close();
    }
  });

  it('refuses a TLS 1.2 renegotiation once the identity of the connection is cached', async () => {
    const { server, port } = await echoServer();
    const alice = ephemeral();
    const a = connection(port, alice, 'TLSv1.2');
    await a.ready;
    try {
      assert.equal(await a.ask(), keyHashOf(alice));
      // A renegotiation could carry another certificate; the cached identity must never be outlived by it.
      const renegotiated = await new Promise<boolean>((resolve) => {
        a.socket.once('close', () => resolve(false));
        a.socket.on('error', () => resolve(false));
        a.socket.renegotiate({ rejectUnauthorized: false }, (err) => {
          if (err) return resolve(false);
          a.ask().then(
            () => resolve(true),
            () => resolve(false),
          );
        });
      });
      assert.equal(renegotiated, false, 'the server refused the renegotiation');
    } finally {
      a.socket.destroy();
      server.close();
    }
  });
});

describe('the chain a client sent', () => {
  it('is still linked after the identity was read (Node hands the issuers out once per socket)', async () => {
    const { caDer, leafDer, keyPem, chainPem } = testChain({ commonName: 'other CAS', endpoint: 'client' });
    const own = ephemeral();
    const seen: { keyHash?: string; leaf?: Buffer; issuer?: Buffer }[] = [];
    const server = createServer(
      { key: own.keyPem, cert: own.certPem, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        const keyHash = identityOfSocket(socket)?.keyHash;
        const cert = peerCertificateOfSocket(socket);
        seen.push({
          ...(keyHash ? { keyHash } : {}),
          ...(cert ? { leaf: cert.raw } : {}),
          ...(cert?.issuerCertificate ? { issuer: cert.issuerCertificate.raw } : {}),
        });
        res.end('none');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const who = {
      keyPem,
      certPem: chainPem,
    };
    const spki = createPublicKey(who.keyPem).export({ type: 'spki', format: 'der' });
    const c = connection((server.address() as AddressInfo).port, who);
    try {
      await c.ready;
      await c.ask();
      await c.ask();
      assert.equal(seen.length, 2);
      for (const s of seen) {
        assert.equal(s.keyHash, createHash('sha256').update(spki).digest('hex'));
        assert.deepEqual(s.leaf, leafDer);
        assert.deepEqual(s.issuer, caDer, 'the issuer the client sent is linked on every request');
      }
    } finally {
      c.socket.destroy();
      server.close();
    }
  });
});

describe('identities of certificates in sessions', () => {
  it('kept by their exact text: each certificate keeps its own key hash, read again or not', () => {
    const people = Array.from({ length: 5 }, () => ephemeral());
    for (let round = 0; round < 3; round++) {
      for (const who of people) {
        const id = identityFromPem(who.certPem);
        assert.equal(id.keyHash, keyHashOf(who));
        assert.deepEqual(id.spki, who.spki);
      }
    }
  });
});

describe('one key, one identity', () => {
  // openssl writes a certificate whose key is a compressed point; OpenSSL's own re-export keeps it compressed.
  it('a certificate with a compressed EC point: the key hash of the uncompressed key, as its access entry names it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-identity-'));
    try {
      const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'plain.key');
      run('ec', '-in', 'plain.key', '-conv_form', 'compressed', '-out', 'packed.key');
      const packed = run('req', '-x509', '-new', '-key', 'packed.key', '-subj', '/CN=packed', '-days', '1').toString();
      const plain = run('req', '-x509', '-new', '-key', 'plain.key', '-subj', '/CN=plain', '-days', '1').toString();
      const uncompressed = run('pkey', '-in', 'plain.key', '-pubout', '-outform', 'DER');
      assert.ok(new X509Certificate(packed).publicKey.export({ type: 'spki', format: 'der' }).length < 91);
      const want = createHash('sha256').update(uncompressed).digest('hex');
      assert.equal(identityFromPem(packed).keyHash, want);
      assert.equal(identityFromPem(plain).keyHash, want);
      assert.deepEqual(identityFromPem(packed).spki, uncompressed);
      const [entry] = accessEntries([packed], 'read');
      assert.deepEqual(entry, { kind: 'key', keyHash: want });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
