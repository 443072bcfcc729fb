import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { type KeyObject, X509Certificate, createHash, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
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

/**
 * A certificate built so that a DER reader taking one-byte tags sees another key's SPKI where the SPKI stands:
 * the serial number's tag in the multi-byte form (0x1f 0x02, which OpenSSL reads as INTEGER), its content
 * holding fields and a victim's SPKI. OpenSSL takes the key from the real SPKI, the attacker's; so must the CAS.
 */
function forgedCertificate(): { pem: string; attacker: KeyObject; victimSpki: Buffer; attackerSpki: Buffer } {
  const len = (n: number) => (n < 128 ? [n] : n < 256 ? [0x81, n] : [0x82, n >> 8, n & 255]);
  const tlv = (tag: number, ...parts: Buffer[]) => {
    const c = Buffer.concat(parts);
    return Buffer.concat([Buffer.from([tag, ...len(c.length)]), c]);
  };
  const seq = (...p: Buffer[]) => tlv(0x30, ...p);
  const name = (cn: string) => seq(tlv(0x31, seq(tlv(0x06, Buffer.from([0x55, 4, 3])), tlv(0x0c, Buffer.from(cn)))));
  const time = (d: Date) => tlv(0x17, Buffer.from(`${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`));
  const ecdsaSha256 = seq(tlv(0x06, Buffer.from('2a8648ce3d040302', 'hex')));
  const victim = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const victimSpki = victim.publicKey.export({ type: 'spki', format: 'der' });
  const attackerSpki = attacker.publicKey.export({ type: 'spki', format: 'der' });
  const now = Date.now();
  const validity = seq(time(new Date(now - 3600e3)), time(new Date(now + 86400e3)));
  const rest = Buffer.concat([ecdsaSha256, name('evil'), validity, name('evil'), attackerSpki]);
  const hidden = Buffer.concat([
    Buffer.from('040004000400', 'hex'),
    Buffer.from('3000', 'hex'),
    victimSpki,
    Buffer.from([0x04, 0x82, rest.length >> 8, rest.length & 255]),
  ]);
  const serial = Buffer.concat([Buffer.from([0x1f, 0x02, 0x81, hidden.length]), hidden]);
  const tbs = seq(tlv(0xa0, tlv(0x02, Buffer.from([2]))), serial, rest);
  const der = seq(tbs, ecdsaSha256, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, attacker.privateKey)));
  const pem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  return { pem, attacker: attacker.privateKey, victimSpki, attackerSpki };
}

describe('a certificate crafted to show a DER reader another key', () => {
  const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('is the identity of the key OpenSSL took from it, read from a PEM and from a TLS handshake', async () => {
    const forged = forgedCertificate();
    assert.ok(new X509Certificate(forged.pem).raw.includes(forged.victimSpki), 'the victim key is inside');
    assert.equal(identityFromPem(forged.pem).keyHash, hash(forged.attackerSpki));
    const { server, port } = await echoServer();
    const keyPem = forged.attacker.export({ type: 'pkcs8', format: 'pem' }).toString();
    const c = connection(port, { keyPem, certPem: forged.pem });
    try {
      await c.ready;
      assert.equal(await c.ask(), hash(forged.attackerSpki));
    } finally {
      c.socket.destroy();
      server.close();
    }
  });
});
