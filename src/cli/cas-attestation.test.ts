import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { collateralProvider } from '../attestation/collateral.js';
import { verifyHardware } from '../attestation/hardware.js';
import { intelCollateralFromFiles } from '../attestation/intel/index.js';
import { startCas, type RunningCas } from '../cas/server.js';
import { attestCasTee } from './cas-attestation.js';

/**
 * `veil cas attest` against a CAS that presents real SGX evidence (Phala's quote, verified at its collateral's
 * time). The verifier is the seam: it verifies the real quote and puts in the report data the binding the CAS
 * asked its TEE for — what a TEE would have returned. The refusal of evidence that does not bind is tested end
 * to end with a recorded quote (src/e2e/tsm.e2e.test.ts).
 */
const V = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
const QUOTE = readFileSync(join(V, 'sgx/phala-dcap-qvl/sgx_quote'));
const MRENCLAVE = '33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb';
const MRSIGNER = '815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6';
const collateral = collateralProvider({
  intel: [intelCollateralFromFiles([join(V, 'sgx/phala-dcap-qvl/sgx_quote_collateral.json')])],
});

describe('veil cas attest: a CAS without a TEE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-cas-notee-'));
  let cas: RunningCas;
  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir });
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is pinned by its fingerprint alone, but never when a measurement was asked for', async () => {
    const base = {
      trustAny: false,
      tolerate: [],
      identity: [],
      now: new Date(),
      fingerprint: cas.identity.fingerprint,
    };
    assert.equal((await attestCasTee(cas.url, base)).result, undefined);
    await assert.rejects(
      attestCasTee(cas.url, { ...base, identity: [{ mrenclave: [MRENCLAVE] }] }),
      /has no TEE evidence, so the measurement you gave cannot be checked/,
    );
    await assert.rejects(
      attestCasTee(cas.url, { ...base, fingerprint: undefined, identity: [{ mrenclave: [MRENCLAVE] }] }),
      /has no TEE evidence/,
    );
  });
});

describe('veil cas attest: a CAS in a TEE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-cas-tee-'));
  let cas: RunningCas;
  let asked: Buffer | undefined;
  const verify: typeof verifyHardware = async (input) => {
    const real = await verifyHardware(input, { now: new Date('2025-06-19T11:56:00Z'), collateral });
    return { ...real, reportData: asked! };
  };
  const want = (over: Partial<Parameters<typeof attestCasTee>[1]> = {}) => ({
    trustAny: false,
    tolerate: ['insecure-configuration', 'software-hardening-needed'],
    ignoreAdvisories: ['INTEL-SA-00289', 'INTEL-SA-00615'],
    identity: [{ mrenclave: [MRENCLAVE] }],
    collateral,
    now: new Date(),
    verify,
    ...over,
  });

  before(async () => {
    cas = await startCas({
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      selfEvidence: async (reportData) => {
        asked = reportData;
        return { type: 'sgx-dcap', quote: QUOTE.toString('base64') };
      },
    });
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pins the CA after verifying the evidence, its binding, the platform and the identity', async () => {
    const { pin, result } = await attestCasTee(cas.url, want());
    assert.equal(pin.fingerprint, cas.identity.fingerprint);
    assert.equal(result?.type, 'sgx');
    assert.equal(result?.tcb?.status, 'ConfigurationAndSWHardeningNeeded');
  });

  it("refuses a TCB status the flags do not tolerate (SCONE's -C -S)", async () => {
    await assert.rejects(
      attestCasTee(cas.url, want({ tolerate: ['insecure-configuration'] })),
      /TCB status: the TCB status is ConfigurationAndSWHardeningNeeded/,
    );
    await assert.rejects(
      attestCasTee(cas.url, want({ ignoreAdvisories: ['INTEL-SA-00289'] })),
      /advisories INTEL-SA-00615 apply/,
    );
  });

  it('refuses another identity than the one given', async () => {
    await assert.rejects(
      attestCasTee(cas.url, want({ identity: [{ mrenclave: ['0'.repeat(64)] }] })),
      /Unexpected enclave measurement \(MRENCLAVE, 33d8736d/,
    );
    await assert.rejects(
      attestCasTee(cas.url, want({ identity: [{ signer: { mrsigner: MRSIGNER, isvsvn_min: 1 } }] })),
      /isvsvn is 0, below isvsvn_min 1/,
    );
  });

  it('refuses when nothing says which CAS it must be, unless a fingerprint is given (and then checks it)', async () => {
    await assert.rejects(attestCasTee(cas.url, want({ identity: [] })), /nothing says which CAS it must be/);
    assert.ok((await attestCasTee(cas.url, want({ identity: [], fingerprint: cas.identity.fingerprint }))).result);
    await assert.rejects(attestCasTee(cas.url, want({ fingerprint: 'ab'.repeat(32) })), /fingerprint/);
  });

  it('refuses evidence that binds another CA key or nonce', async () => {
    const stale: typeof verifyHardware = async (input, opts) => ({
      ...(await verify(input, opts)),
      reportData: Buffer.alloc(64),
    });
    await assert.rejects(
      attestCasTee(cas.url, want({ verify: stale })),
      /report data: the CAS's evidence does not bind this nonce and the CA key/,
    );
  });
});
