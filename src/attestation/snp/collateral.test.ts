import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AttestationError } from '../errors.js';
import type { AmdCollateralRequest } from '../types.js';
import { amdCollateralFromFiles, amdCollateralFromKds, vcekUrl } from './collateral.js';
import { VECTORS, snpCases, vector, type SnpCase } from './fixtures.js';
import { verifySnpReport } from './verify.js';

const code =
  (c: string, ...parts: string[]) =>
  (e: unknown) =>
    e instanceof AttestationError && e.code === c && parts.every((p) => e.message.includes(p));
const [gsg, tr, vlek, virt] = snpCases() as [SnpCase, SnpCase, SnpCase, SnpCase];
const gsgReq: AmdCollateralRequest = {
  product: 'Milan',
  signingKey: 'vcek',
  hwid: '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d',
  tcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 },
};

describe('amdCollateralFromFiles', () => {
  const dir = fileURLToPath(new URL('snp/', VECTORS));

  it('finds the VCEK by hwID and TCB, and the chain, in the vector directories', async () => {
    const files = amdCollateralFromFiles([dir]);
    const got = await files.amd(gsgReq);
    assert.ok(got?.vcek?.equals(vector('snp/go-sev-guest/vcek.testcer')));
    assert.match(got?.chain ?? '', /BEGIN CERTIFICATE/);
    for (const c of [gsg, tr, virt, vlek]) {
      const r = await verifySnpReport(c.report, { now: c.at, collateral: files });
      assert.equal(r.type, 'snp');
    }
    assert.equal((await files.amd({ ...gsgReq, tcb: { ...gsgReq.tcb, microcode: 69 } }))?.vcek, undefined);
  });

  it('refuses an explicit file that is not collateral, and a missing path', async () => {
    await assert.rejects(
      amdCollateralFromFiles([join(dir, 'go-sev-guest/README.txt')]).amd(gsgReq),
      code('ATTESTATION_COLLATERAL', 'no certificate or CRL'),
    );
    await assert.rejects(
      amdCollateralFromFiles([join(dir, 'nope')]).amd(gsgReq),
      code('ATTESTATION_COLLATERAL', 'cannot read'),
    );
  });

  it('returns nothing for a directory without AMD files', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'veil-amd-'));
    writeFileSync(join(empty, 'x.txt'), 'hello');
    try {
      assert.equal(await amdCollateralFromFiles([empty]).amd(gsgReq), undefined);
    } finally {
      rmSync(empty, { recursive: true });
    }
  });
});

describe('amdCollateralFromKds (local server)', () => {
  let server: Server;
  let base = '';
  const hits: string[] = [];
  const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();
  const send =
    (body: Buffer | string, status = 200) =>
    (res: import('node:http').ServerResponse) => {
      res.writeHead(status, { 'content-type': 'application/octet-stream' });
      res.end(body);
    };

  before(async () => {
    routes.set('/vcek/v1/Milan/cert_chain', send(vector('snp/go-sev-guest/milan.testcer')));
    routes.set(
      `/vcek/v1/Milan/${gsgReq.hwid}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68`,
      send(vector('snp/go-sev-guest/vcek.testcer')),
    );
    routes.set('/vlek/v1/Milan/cert_chain', send(vector('snp/go-sev-guest/milanvlek.testcer')));
    routes.set('/vcek/v1/Genoa/cert_chain', send('not a chain'));
    routes.set('/vcek/v1/Turin/cert_chain', (res) => void setTimeout(() => res.destroyed || send('late')(res), 2000));
    routes.set('/vcek/v1/Milan/crl', send('garbage CRL'));
    routes.set('/big/vcek/v1/Milan/cert_chain', send(Buffer.alloc(200_000, 0x41)));
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const route = routes.get(req.url ?? '');
      if (route) route(res);
      else send('not found', 404)(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('builds the KDS URLs (Turin: 8-byte hwid, fmcSPL first)', () => {
    assert.equal(
      vcekUrl('https://kdsintf.amd.com', gsgReq),
      `https://kdsintf.amd.com/vcek/v1/Milan/${gsgReq.hwid}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68`,
    );
    assert.equal(
      vcekUrl('https://kdsintf.amd.com', {
        product: 'Turin',
        signingKey: 'vcek',
        hwid: '1E550A8EE5CF9F4D',
        tcb: { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 9 },
      }),
      'https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=9',
    );
    assert.throws(() => vcekUrl('x', { ...gsgReq, hwid: 'abcd' }), code('ATTESTATION_COLLATERAL', '64 bytes'));
    assert.throws(
      () => vcekUrl('x', { ...gsgReq, product: 'Turin', tcb: gsgReq.tcb, hwid: '1e550a8ee5cf9f4d' }),
      code('ATTESTATION_COLLATERAL', 'fmcSPL'),
    );
  });

  it('fetches the VCEK and chain, and the report verifies with them; answers are cached', async () => {
    const kds = amdCollateralFromKds({ baseUrl: base, crl: false });
    const r = await verifySnpReport(gsg.report, { now: gsg.at, collateral: kds });
    assert.equal(r.type, 'snp');
    const before = hits.length;
    await verifySnpReport(gsg.report, { now: gsg.at, collateral: kds });
    assert.equal(hits.length, before);
  });

  it('fetches only the ASVK chain for a VLEK (KDS does not serve VLEKs)', async () => {
    const kds = amdCollateralFromKds({ baseUrl: base, crl: false });
    const got = await kds.amd({
      product: 'Milan',
      signingKey: 'vlek',
      tcb: { bootloader: 4, tee: 0, snp: 24, microcode: 217 },
    });
    assert.equal(got?.vcek, undefined);
    const r = await verifySnpReport(vlek.report, { now: vlek.at, certs: [vlek.vek], collateral: kds });
    assert.equal(r.type, 'snp');
  });

  it('names the URL on 404, garbage, a timeout, an oversized answer and a refused connection', async () => {
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: base, crl: false }).amd({ ...gsgReq, tcb: { ...gsgReq.tcb, microcode: 1 } }),
      code('ATTESTATION_COLLATERAL', `${base}/vcek/v1/Milan/`, 'HTTP 404'),
    );
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: base, crl: false }).amd({ ...gsgReq, product: 'Genoa' }),
      code('ATTESTATION_COLLATERAL', `${base}/vcek/v1/Genoa/cert_chain`, 'not a PEM'),
    );
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: base }).amd(gsgReq),
      code('ATTESTATION_COLLATERAL', `${base}/vcek/v1/Milan/crl`, 'not a CRL'),
    );
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: base, timeoutMs: 200, crl: false }).amd({
        ...gsgReq,
        product: 'Turin',
        hwid: '1e550a8ee5cf9f4d',
        tcb: { ...gsgReq.tcb, fmc: 0 },
      }),
      code('ATTESTATION_COLLATERAL', `${base}/vcek/v1/Turin/cert_chain`, 'no answer within 200 ms'),
    );
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: `${base}/big`, crl: false }).amd(gsgReq),
      code('ATTESTATION_COLLATERAL', 'larger than 65536'),
    );
    await assert.rejects(
      amdCollateralFromKds({ baseUrl: 'http://127.0.0.1:1', crl: false }).amd(gsgReq),
      code('ATTESTATION_COLLATERAL', 'http://127.0.0.1:1/vcek/v1/Milan/cert_chain'),
    );
    // through the verifier the error keeps its code and URL
    await assert.rejects(
      verifySnpReport(gsg.report, { now: gsg.at, collateral: amdCollateralFromKds({ baseUrl: base }) }),
      code('ATTESTATION_COLLATERAL', '/vcek/v1/Milan/crl'),
    );
  });

  it('uses an injected fetch', async () => {
    const seen: string[] = [];
    const kds = amdCollateralFromKds({
      baseUrl: 'https://kds.example',
      crl: false,
      fetch: async (url) => {
        seen.push(url);
        const body = url.endsWith('cert_chain')
          ? vector('snp/go-sev-guest/milan.testcer')
          : vector('snp/go-sev-guest/vcek.testcer');
        return {
          status: 200,
          body: (async function* () {
            yield body;
          })(),
        };
      },
    });
    assert.ok((await kds.amd(gsgReq))?.vcek);
    assert.deepEqual(seen, [
      'https://kds.example/vcek/v1/Milan/cert_chain',
      `https://kds.example/vcek/v1/Milan/${gsgReq.hwid}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68`,
    ]);
  });
});
