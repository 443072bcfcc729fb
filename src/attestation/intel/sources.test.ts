import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import type { IntelCollateral } from '../types.js';
import { COLLATERAL_CASES, VECTORS, collateralOf, vector } from './fixtures.js';
import { rawMember } from './rawjson.js';
import { intelCollateralFromPcs } from './pcs.js';
import { intelCollateralFromFiles } from './sources.js';
import { verifyIntelQuote } from './verify.js';

/** A local PCS serving the dcap-rs TDX collateral files (real bytes) with Intel's headers. */
function pcsRoutes(): Record<string, { body: Buffer; headers: Record<string, string> }> {
  const enc = (p: string): string => encodeURIComponent(vector(p).toString('latin1'));
  const signing = enc('sgx/automata-dcap-rs/tcb_signing_cert.pem');
  const pckChain = encodeURIComponent(vector('tdx/go-tdx-guest/pckCrlIssuerChain.pem').toString('latin1'));
  return {
    '/tdx/certification/v4/tcb?fmspc=00806f050000': {
      body: vector('tdx/automata-dcap-rs/tcbinfov3_00806f050000.json'),
      headers: { 'TCB-Info-Issuer-Chain': signing },
    },
    '/tdx/certification/v4/qe/identity': {
      body: vector('tdx/automata-dcap-rs/qeidentityv2_apiv4.json'),
      headers: { 'SGX-Enclave-Identity-Issuer-Chain': signing },
    },
    '/sgx/certification/v4/tcb?fmspc=00606a000000': {
      body: vector('sgx/automata-dcap-rs/tcbinfov2.json'),
      headers: { 'SGX-TCB-Info-Issuer-Chain': signing },
    },
    '/sgx/certification/v4/qe/identity': {
      body: vector('sgx/automata-dcap-rs/qeidentityv2.json'),
      headers: { 'SGX-Enclave-Identity-Issuer-Chain': signing },
    },
    '/sgx/certification/v4/pckcrl?ca=platform&encoding=der': {
      body: vector('sgx/automata-dcap-rs/pck_platform_crl.der'),
      headers: { 'SGX-PCK-CRL-Issuer-Chain': pckChain },
    },
    '/rootcacrl': { body: vector('sgx/automata-dcap-rs/intel_root_ca_crl.der'), headers: {} },
  };
}

describe('Intel PCS source against a local server', () => {
  let server: Server;
  let base: string;
  const routes = pcsRoutes();
  before(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/slow')) return; // never answers
      if (req.url?.startsWith('/huge')) {
        res.writeHead(200);
        res.end(Buffer.alloc(100_000));
        return;
      }
      if (req.url?.startsWith('/garbage/')) {
        res.writeHead(200, {
          'TCB-Info-Issuer-Chain': 'x',
          'SGX-Enclave-Identity-Issuer-Chain': 'x',
          'SGX-PCK-CRL-Issuer-Chain': 'x',
        });
        res.end('<html>not json</html>');
        return;
      }
      const r = routes[req.url ?? ''];
      if (!r) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, r.headers).end(r.body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const dcapTdx = COLLATERAL_CASES.find((c) => c.name === 'dcap-rs TDX')!;

  it('serves the same collateral as the files source, and it verifies', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: base, rootCaCrlUrl: `${base}/rootcacrl` });
    const fromPcs = await pcs({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' });
    const fromFiles = await collateralOf(dcapTdx);
    assert.ok(fromPcs);
    assert.deepEqual(fromPcs.tcbInfo, fromFiles.tcbInfo);
    assert.deepEqual(fromPcs.qeIdentity, fromFiles.qeIdentity);
    assert.equal(fromPcs.tcbInfoIssuerChain, fromFiles.tcbInfoIssuerChain);
    assert.deepEqual(fromPcs.pckCrl, fromFiles.pckCrl);
    assert.deepEqual(fromPcs.rootCaCrl, fromFiles.rootCaCrl);
    const r = await verifyIntelQuote(vector(dcapTdx.quote), { now: new Date(dcapTdx.at), tee: 'tdx', collateral: pcs });
    assert.equal(r.tcb?.status, 'OutOfDate');
    assert.deepEqual(r.tcb?.advisoryIds, dcapTdx.advisoryIds);
  });

  it('SGX with the v3 header name SGX-TCB-Info-Issuer-Chain', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: base, rootCaCrlUrl: `${base}/rootcacrl` });
    const c = COLLATERAL_CASES.find((x) => x.name === 'dcap-rs SGX')!;
    const r = await verifyIntelQuote(vector(c.quote), { now: new Date(c.at), tee: 'sgx', collateral: pcs });
    assert.equal(r.tcb?.status, 'OutOfDate');
  });

  async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof AttestationError, String(err));
      assert.equal(err.code, 'ATTESTATION_COLLATERAL');
      assert.match(err.message, message);
      return true;
    });
  }

  it('404 names the URL', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: base, rootCaCrlUrl: `${base}/rootcacrl` });
    await refused(
      pcs({ tee: 'tdx', fmspc: '112233445566', ca: 'platform' }),
      /http:\/\/127\.0\.0\.1:\d+\/tdx\/certification\/v4\/tcb\?fmspc=112233445566: HTTP 404/,
    );
  });

  it('a body that is not JSON', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: `${base}/garbage`, rootCaCrlUrl: `${base}/rootcacrl` });
    await refused(
      pcs({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' }),
      /garbage\/.*: the body is not (JSON|a CRL)/,
    );
  });

  it('a timeout', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: base, rootCaCrlUrl: `${base}/slow`, timeoutMs: 200 });
    await refused(
      pcs({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' }),
      /\/slow: no complete response within 200 ms/,
    );
  });

  it('a response over the size cap', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: base, rootCaCrlUrl: `${base}/huge`, maxBytes: 20_000 });
    await refused(pcs({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' }), /\/huge: response .*exceeds the limit/);
  });

  it('the verifier reports a failing PCS as ATTESTATION_COLLATERAL', async () => {
    const pcs = intelCollateralFromPcs({ baseUrl: `${base}/nothing`, rootCaCrlUrl: `${base}/rootcacrl` });
    await refused(
      verifyIntelQuote(vector(dcapTdx.quote), { now: new Date(dcapTdx.at), tee: 'tdx', collateral: pcs }),
      /^collateral fetch: .*HTTP 404/,
    );
  });
});

describe('files source', () => {
  it('selects by FMSPC and TEE among several TCB infos; the newest QE identity', async () => {
    const files = intelCollateralFromFiles([VECTORS + 'tdx/automata-dcap-rs', VECTORS + 'sgx/automata-dcap-rs']);
    const tdx = (await files({ tee: 'tdx', fmspc: '90c06f000000', ca: 'platform' })) as IntelCollateral;
    assert.match(tdx.tcbInfo.body, /"fmspc":"90c06f000000"/);
    assert.match(tdx.qeIdentity.body, /"id":"TD_QE"/);
    const sgx = (await files({ tee: 'sgx', fmspc: '00606a000000', ca: 'platform' })) as IntelCollateral;
    assert.match(sgx.qeIdentity.body, /"id":"QE".*"issueDate":"2025-02-13T03:33:12Z"/);
    assert.ok(sgx.pckCrl && sgx.rootCaCrl);
    assert.equal(
      await files({ tee: 'sgx', fmspc: 'ffffffffffff', ca: 'platform' })
        .then(() => 'x')
        .catch((e: AttestationError) => e.code),
      'ATTESTATION_COLLATERAL',
    );
  });

  it('nothing for this platform: undefined', async () => {
    const files = intelCollateralFromFiles([VECTORS + 'sgx/phala-dcap-qvl/sgx_quote_collateral.json']);
    assert.equal(await files({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' }), undefined);
  });

  it('a missing path is ATTESTATION_COLLATERAL', async () => {
    const files = intelCollateralFromFiles([VECTORS + 'nope']);
    await assert.rejects(
      files({ tee: 'tdx', fmspc: '00806f050000', ca: 'platform' }),
      (e: unknown) => e instanceof AttestationError && e.code === 'ATTESTATION_COLLATERAL',
    );
  });

  it('prefers the TCB Signing certificate valid at issue among several that verify', async () => {
    const files = intelCollateralFromFiles([
      VECTORS + 'tdx/trustee/tcbInfo.json',
      VECTORS + 'tdx/trustee/enclaveIdentity.json',
      VECTORS + 'tdx/go-tdx-guest/tcbInfoIssuerChain.pem',
      VECTORS + 'tdx/phala-dcap-qvl/tdx_quote_collateral.json',
    ]);
    const c = (await files({ tee: 'tdx', fmspc: '00a06d080000', ca: 'platform' })) as IntelCollateral;
    assert.match(c.tcbInfo.body, /"issueDate":"2025-10-27/);
    const trustee = COLLATERAL_CASES.find((x) => x.name === 'trustee TDX')!;
    // The Phala set's CRLs (2025-06) are chosen as the only ones, and are stale in October.
    await assert.rejects(
      verifyIntelQuote(vector(trustee.quote), { now: new Date(trustee.at), tee: 'tdx', collateral: async () => c }),
      /CRL: expired at/,
    );
    const r = await verifyIntelQuote(vector(trustee.quote), {
      now: new Date(trustee.at),
      tee: 'tdx',
      collateral: async () => ({ ...c, pckCrl: undefined, rootCaCrl: undefined }),
    });
    assert.equal(r.tcb?.status, 'OutOfDate');
  });
});

describe('rawMember', () => {
  it('cuts the exact text, whitespace and escapes included', () => {
    const text = ' { "a" : [1, {"}": "\\"{"}], "tcbInfo" :  {"x":"}\\\\", "y": [ ] } , "signature":"ab"}';
    assert.equal(rawMember(text, 'tcbInfo'), '{"x":"}\\\\", "y": [ ] }');
    assert.equal(rawMember(text, 'signature'), '"ab"');
    assert.equal(rawMember(text, 'missing'), undefined);
    assert.throws(() => rawMember('{"tcbInfo": {"x": 1', 'tcbInfo'), AttestationError);
  });
});
