/**
 * `npm run bench:verify`: hardware evidence verifications per second per core, with cached collateral, for
 * SGX and TDX quotes (two ECDSA P-256 verifications each once the PCK chain and collateral are known) and
 * SEV-SNP reports (one ECDSA P-384 verification), beside `openssl speed` ECDSA verify rates measured in the
 * same run: the bound for what the signature checks alone allow. CPU time is what is reported (process
 * user+system), since the machine is shared; wall-clock follows.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collateralProvider } from '../attestation/collateral.js';
import { verifyHardware } from '../attestation/hardware.js';
import { intelCollateralFromFiles } from '../attestation/intel/index.js';
import type { HardwareType, VerifyOptions } from '../attestation/types.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const VECTORS = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
const file = (p: string) => readFileSync(join(VECTORS, p));

interface Case {
  label: string;
  type: HardwareType;
  evidence: Buffer;
  options: VerifyOptions;
}

function cases(): Case[] {
  const phala = (p: string) => collateralProvider({ intel: [intelCollateralFromFiles([join(VECTORS, p)])] });
  return [
    {
      label: 'SGX quote v3 (Phala), full collateral',
      type: 'sgx',
      evidence: file('sgx/phala-dcap-qvl/sgx_quote'),
      options: {
        now: new Date('2025-06-20T00:00:00Z'),
        collateral: phala('sgx/phala-dcap-qvl/sgx_quote_collateral.json'),
      },
    },
    {
      label: 'TDX quote v4 (Phala), full collateral',
      type: 'tdx',
      evidence: file('tdx/phala-dcap-qvl/tdx_quote'),
      options: {
        now: new Date('2025-06-20T00:00:00Z'),
        collateral: phala('tdx/phala-dcap-qvl/tdx_quote_collateral.json'),
      },
    },
    {
      label: 'SEV-SNP report (go-sev-guest), VCEK + chain',
      type: 'snp',
      evidence: file('snp/go-sev-guest/attestation.bin'),
      options: {
        now: new Date('2022-09-25T00:00:00Z'),
        certs: [file('snp/go-sev-guest/vcek.testcer'), file('snp/go-sev-guest/milan.testcer')],
      },
    },
  ];
}

async function measure(c: Case): Promise<{ perCpuSecond: number; perSecond: number; count: number }> {
  await verifyHardware({ type: c.type, evidence: c.evidence }, c.options); // warm the caches, as a running CAS has them
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) await verifyHardware({ type: c.type, evidence: c.evidence }, c.options);
    count += 50;
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perCpuSecond: count / ((cpu.user + cpu.system) / 1e6), perSecond: count / wall, count };
}

function opensslVerifyRates(): Record<string, number> {
  const out = execFileSync(
    'openssl',
    ['speed', '-seconds', String(Math.max(1, Math.round(SECONDS / 2))), 'ecdsap256', 'ecdsap384'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const rates: Record<string, number> = {};
  for (const m of out.matchAll(/(\d+) bits ecdsa \(nistp\d+\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/g))
    rates[`P-${m[1]}`] = Number(m[3]);
  return rates;
}

const rates = opensslVerifyRates();
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `bench:verify — ${SECONDS}s per case, one core (the verifiers are synchronous apart from collateral lookups)`,
);
console.log(
  `openssl speed (same run): ECDSA P-256 verify ${fmt(rates['P-256'] ?? 0)}/s, P-384 verify ${fmt(rates['P-384'] ?? 0)}/s`,
);
for (const c of cases()) {
  const r = await measure(c);
  const curve = c.type === 'snp' ? 'P-384' : 'P-256';
  const perQuote = c.type === 'snp' ? 1 : 2;
  const bound = (rates[curve] ?? 0) / perQuote;
  console.log(
    `${c.label}: ${fmt(r.perCpuSecond)} verifications per CPU-second (${fmt(r.perSecond)}/s wall, ${r.count} runs); ` +
      `bound from openssl: ${fmt(bound)}/s (${perQuote} ${curve} verification${perQuote > 1 ? 's' : ''} each) → ${((r.perCpuSecond / bound) * 100).toFixed(0)} % of it`,
  );
}
console.log('goal: ≥ 3,000 SGX/TDX quotes per second per core');
