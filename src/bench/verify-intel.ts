import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IntelCollateral } from '../attestation/types.js';
import { intelCollateralFromFiles } from '../attestation/intel/sources.js';
import { verifyIntelQuote } from '../attestation/intel/verify.js';

/** Quote verifications per second on one core, with collateral already loaded (cached chains and bundle). */
const V = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
const quote = readFileSync(V + 'sgx/phala-dcap-qvl/sgx_quote');
const files = intelCollateralFromFiles([V + 'sgx/phala-dcap-qvl/sgx_quote_collateral.json']);
const col = (await files({ tee: 'sgx', fmspc: '00a067110000', ca: 'processor' })) as IntelCollateral;
const source = async (): Promise<IntelCollateral> => col;
const now = new Date('2025-06-19T11:56:00Z');

for (const [label, collateral] of [['quote only', undefined], ['with collateral', source]] as const) {
  for (let i = 0; i < 200; i++) await verifyIntelQuote(quote, { now, tee: 'sgx', collateral });
  const n = 5000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await verifyIntelQuote(quote, { now, tee: 'sgx', collateral });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${label}: ${Math.round(n / s)} verifications/s (${((s / n) * 1e6).toFixed(0)} µs each)`);
}
