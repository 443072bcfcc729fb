import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { hardwareReportData, type EvidenceVerifier, type VerificationResult } from '../attestation/index.js';
import { collateralProvider } from '../attestation/collateral.js';
import { verifyHardware } from '../attestation/hardware.js';
import { intelCollateralFromFiles } from '../attestation/intel/index.js';
import type { TdxClaims } from '../attestation/types.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, type Identity } from './testing.js';

/**
 * The CAS's judgement of hardware evidence, with the verifier as the seam: the Phala TDX and SGX quotes are
 * verified for real (at their collateral's time), and only the report data is replaced by the binding of
 * the nonce this CAS issued — what a TEE would have put there. Binding itself is tested end to end with a
 * recorded quote, which this run's nonce cannot match (src/e2e/tsm.e2e.test.ts).
 */
const V = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
const file = (p: string) => readFileSync(join(V, p));

describe('CAS: hardware evidence judged against the session', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-attest-hw-'));
  let cas: RunningCas;
  let tdx: VerificationResult;
  const owner = ephemeral();
  let binding: Buffer | undefined;
  let lastNow: Date | undefined;
  const verifier: EvidenceVerifier = {
    verify: async (evidence, now) => {
      lastNow = now;
      const real =
        evidence.type === 'sgx'
          ? await verifyHardware(evidence, {
              now: new Date('2025-06-19T11:56:00Z'),
              collateral: collateralProvider({
                intel: [intelCollateralFromFiles([join(V, 'sgx/phala-dcap-qvl/sgx_quote_collateral.json')])],
              }),
            })
          : await verifyHardware(evidence, {
              now: new Date('2025-06-19T11:16:00Z'),
              collateral: collateralProvider({
                intel: [intelCollateralFromFiles([join(V, 'tdx/phala-dcap-qvl/tdx_quote_collateral.json')])],
              }),
            });
      return { ...real, reportData: binding ?? real.reportData };
    },
  };

  const call = (who: Identity, path: string, body: string) => post(cas, who, path, body);
  /** One attestation as a runtime in a TEE would make it: the quote's report data binds this nonce and key. */
  const attest = async (
    configId: string,
    type: 'tdx' | 'sgx-dcap',
    opts: { bind?: boolean; rtmrLog?: unknown[]; tamper?: (b: Buffer) => Buffer } = {},
  ) => {
    const rt = ephemeral();
    const nonce = (await call(rt, '/v1/attest/nonce', '')).json.nonce as string;
    const spki = new X509Certificate(rt.certPem).publicKey.export({ type: 'spki', format: 'der' });
    binding = opts.bind === false ? undefined : hardwareReportData(Buffer.from(nonce, 'hex'), spki);
    if (binding && opts.tamper) binding = opts.tamper(binding);
    const quote = file(type === 'tdx' ? 'tdx/phala-dcap-qvl/tdx_quote' : 'sgx/phala-dcap-qvl/sgx_quote').toString(
      'base64',
    );
    const evidence = { type, quote, ...(opts.rtmrLog ? { rtmrLog: opts.rtmrLog } : {}) };
    return call(rt, '/v1/attest', JSON.stringify({ config_id: configId, nonce, evidence }));
  };
  const session = (name: string, identity: string, security = '') =>
    [
      `name: ${name}`,
      'services:',
      '  - name: api',
      `    ${identity}`,
      '    command: [api, --flag]',
      '    pwd: /',
      security,
      '',
    ].join('\n');

  before(async () => {
    tdx = await verifier.verify({ type: 'tdx', evidence: file('tdx/phala-dcap-qvl/tdx_quote') }, new Date());
    const mrtd = (tdx.claims as TdxClaims).mrtd;
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir, verifier });
    const sgxIdentity = 'attestation: {mrenclave: [33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb]}';
    const sessions = [
      session('td', `attestation: {tdx: {mrtd: ${mrtd}}}`),
      session('td-other', `attestation: {tdx: {mrtd: '${'0'.repeat(96)}'}}`),
      session('td-none', 'environment: {A: b}'),
      session('td-sim', `attestation: {tdx: {mrtd: ${mrtd}}}`, 'security: {attestation: {mode: none}}'),
      session('enclave', sgxIdentity),
      session(
        'enclave-tolerant',
        sgxIdentity,
        'security: {attestation: {tolerate: [insecure-configuration, software-hardening-needed]}}',
      ),
      session(
        'enclave-ok',
        sgxIdentity,
        'security: {attestation: {tolerate: [insecure-configuration, software-hardening-needed], ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]}}',
      ),
      session('maa', sgxIdentity, 'security: {attestation: {mode: maa}}'),
    ];
    for (const text of sessions) assert.equal((await call(owner, '/v1/sessions', text)).status, 201, text);
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('releases the configuration to verified, bound evidence of the listed TD, and says what it accepted', async () => {
    const res = await attest('td/api', 'tdx');
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.command, ['api', '--flag']);
    assert.deepEqual(res.json.attestation, {
      evidence: 'tdx',
      simulated: false,
      tcb_status: 'UpToDate',
      tolerated: [],
    });
    assert.ok(lastNow && Math.abs(lastNow.getTime() - Date.now()) < 60_000, 'the CAS verifies at its own clock');
  });

  it('refuses evidence whose report data does not bind this nonce and key', async () => {
    const res = await attest('td/api', 'tdx', { bind: false });
    assert.equal(res.status, 403);
    assert.match(
      res.json.error.message,
      /^Attestation failed: report data: the evidence's report data does not bind this nonce/,
    );
  });

  it('checks all 64 bytes of the report data: the 32 after the binding must be zero', async () => {
    const res = await attest('td/api', 'tdx', { tamper: (b) => Buffer.concat([b.subarray(0, 63), Buffer.from([1])]) });
    assert.equal(res.status, 403);
    assert.match(res.json.error.message, /report data: the evidence's report data does not bind/);
  });

  it('refuses another TD, and a service that lists no identity', async () => {
    const other = await attest('td-other/api', 'tdx');
    assert.equal(other.status, 403);
    assert.match(other.json.error.message, /no attestation variant matches: variant 1: mrtd is 91eb2b44/);
    assert.match(other.json.error.hint, /^the runtime reported no RTMR3 extension/);
    const logged = await attest('td-other/api', 'tdx', {
      rtmrLog: [{ index: 3, digest: 'ab'.repeat(48), description: 'program' }],
    });
    assert.match(
      logged.json.error.hint,
      /extending RTMR3 with program \(its log does NOT replay from zero to the quoted RTMR3/,
    );
    const none = await attest('td-none/api', 'tdx');
    assert.equal(none.status, 403);
    assert.match(none.json.error.message, /lists no measurement/);
  });

  it('judges the TCB status and advisories against the session, saying what would accept it', async () => {
    const strict = await attest('enclave/api', 'sgx-dcap');
    assert.equal(strict.status, 403);
    assert.match(strict.json.error.message, /TCB status: the TCB status is ConfigurationAndSWHardeningNeeded/);
    assert.match(strict.json.error.hint, /tolerating insecure-configuration and software-hardening-needed/);
    const tolerant = await attest('enclave-tolerant/api', 'sgx-dcap');
    assert.equal(tolerant.status, 403);
    assert.match(tolerant.json.error.message, /advisories INTEL-SA-00289, INTEL-SA-00615 apply/);
    const ok = await attest('enclave-ok/api', 'sgx-dcap');
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(ok.json.attestation.tolerated, ['insecure-configuration', 'software-hardening-needed']);
  });

  it('refuses evidence of another kind than its declared type, and mode: maa by name', async () => {
    const rt = ephemeral();
    const nonce = (await call(rt, '/v1/attest/nonce', '')).json.nonce as string;
    const sgxAsTdx = await call(
      rt,
      '/v1/attest',
      JSON.stringify({
        config_id: 'td/api',
        nonce,
        evidence: { type: 'tdx', quote: file('sgx/phala-dcap-qvl/sgx_quote').toString('base64') },
      }),
    );
    assert.equal(sgxAsTdx.status, 403);
    assert.match(sgxAsTdx.json.error.message, /SGX quote, but TDX evidence was expected/);
    const maa = await attest('maa/api', 'sgx-dcap');
    assert.equal(maa.status, 403);
    assert.match(maa.json.error.message, /does not support Microsoft Azure Attestation/);
  });

  it('judges hardware evidence fully in a session with mode: none too', async () => {
    assert.equal((await attest('td-sim/api', 'tdx')).status, 200);
    assert.equal((await attest('td-sim/api', 'tdx', { bind: false })).status, 403);
  });
});
