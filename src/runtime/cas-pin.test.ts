import assert from 'node:assert/strict';
import { createHash, sign } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { bitString, seq } from '../secrets/der.js';
import { children, readTlv } from '../secrets/der-read.js';
import {
  generatePrivateKey,
  issueCertificate,
  pemEncode,
  privateKeyObject,
  type PrivateKeyMaterial,
} from '../secrets/index.js';
import { connectCas, type CasTrustAnchor } from './cas-identity.js';

/**
 * The runtime's pin of the CAS, against TLS servers that each break one rule. The impostor holds the real
 * CA certificate (it is public) and sends it in its chain, with a leaf that names that CA as its issuer
 * (same name, same key identifier) but is signed by the impostor's own key: only the signature check on the
 * leaf tells the two apart, since the fingerprint and the chain's shape are the real CA's.
 */
const HOUR = 3600_000;
const now = Date.now();
const caKey = generatePrivateKey('P-256');
const caDer = issueCertificate({
  subjectKey: caKey,
  commonName: 'Veil CAS CA',
  isCa: true,
  notBefore: new Date(now - HOUR),
  notAfter: new Date(now + HOUR),
});
const caPem = pemEncode('CERTIFICATE', caDer);
const fingerprint = createHash('sha256').update(caDer).digest('hex');

interface LeafOptions {
  signer?: PrivateKeyMaterial;
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

function leafChain(opts: LeafOptions = {}): { cert: string; key: string } {
  const key = generatePrivateKey('P-256');
  const leaf = issueCertificate({
    subjectKey: key,
    issuer: { certDer: caDer, key: caKey },
    commonName: 'veil-cas',
    ips: opts.ips ?? ['127.0.0.1'],
    isCa: false,
    endpoint: 'server',
    notBefore: opts.notBefore ?? new Date(now - HOUR),
    notAfter: opts.notAfter ?? new Date(now + HOUR),
  });
  const der = opts.signer ? resigned(leaf, opts.signer) : leaf;
  return { cert: pemEncode('CERTIFICATE', der) + caPem, key: pemEncode('PRIVATE KEY', key.pkcs8) };
}

/** The same to-be-signed certificate (issuer name, key identifier and all), signed by another key. */
function resigned(der: Buffer, signer: PrivateKeyMaterial): Buffer {
  const [tbs, algorithm] = children(der, readTlv(der, 0));
  const signature = sign('sha256', tbs!.raw, privateKeyObject(signer.pkcs8));
  return seq(tbs!.raw, algorithm!.raw, bitString(signature));
}

async function serve(chain: { cert: string; key: string }): Promise<{ server: Server; url: string }> {
  const server = createServer(chain, (socket) => socket.end());
  server.on('tlsClientError', () => undefined); // the runtime hangs up on a CAS it refuses
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function pinTo(url: string, trust: CasTrustAnchor): Promise<string> {
  const { socket, pin } = await connectCas(url, trust);
  socket.destroy();
  return pin.fingerprint;
}

const untrusted = (pattern: RegExp) => (e: Error & { code?: string }) =>
  e.code === 'RUNTIME_CAS_UNTRUSTED' && pattern.test(e.message);

describe('runtime: the CAS pin', () => {
  const servers: Server[] = [];
  const urls: Record<string, string> = {};
  before(async () => {
    const impostorKey = generatePrivateKey('P-256');
    const cases: Record<string, LeafOptions> = {
      real: {},
      impostor: { signer: impostorKey },
      otherHost: { ips: ['127.0.0.2'] },
      expired: { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) },
    };
    for (const [name, opts] of Object.entries(cases)) {
      const { server, url } = await serve(leafChain(opts));
      servers.push(server);
      urls[name] = url;
    }
  });
  after(() => {
    for (const server of servers) server.close();
  });

  it('accepts the real CAS, by fingerprint and by the pinned CA file', async () => {
    assert.equal(await pinTo(urls['real']!, { fingerprint }), fingerprint);
    assert.equal(await pinTo(urls['real']!, { fingerprint: fingerprint.toUpperCase() }), fingerprint);
    assert.equal(await pinTo(urls['real']!, { caPem }), fingerprint);
  });

  it('refuses an impostor that replays the real CA certificate in its chain (fingerprint pin)', async () => {
    const refusal = untrusted(/did not present a certificate signed by its CA/);
    await assert.rejects(pinTo(urls['impostor']!, { fingerprint }), refusal);
  });

  it('refuses an impostor that replays the real CA certificate in its chain (pinned CA file)', async () => {
    const refusal = untrusted(/did not present a certificate signed by the pinned CA/);
    await assert.rejects(pinTo(urls['impostor']!, { caPem }), refusal);
    await assert.rejects(pinTo(urls['impostor']!, { caPem, fingerprint }), untrusted(/signed by the pinned CA/));
  });

  it('refuses a wrong fingerprint, even one of the same length that differs in one digit', async () => {
    const last = fingerprint.at(-1) === '0' ? '1' : '0';
    for (const wrong of [fingerprint.slice(0, -1) + last, fingerprint.slice(0, -2)]) {
      await assert.rejects(pinTo(urls['real']!, { fingerprint: wrong }), untrusted(/not the expected/));
    }
  });

  it('refuses a certificate of the real CA that does not name the host dialled', async () => {
    await assert.rejects(pinTo(urls['otherHost']!, { fingerprint }), untrusted(/does not name 127\.0\.0\.1/));
  });

  it('refuses a certificate of the real CA outside its validity period', async () => {
    await assert.rejects(pinTo(urls['expired']!, { fingerprint }), untrusted(/valid only from/));
  });
});
