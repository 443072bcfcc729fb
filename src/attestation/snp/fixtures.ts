import { readFileSync } from 'node:fs';

/** The SNP test vectors (testdata/vectors/snp, README.txt there), for this module's tests. */
export const VECTORS = new URL('../../../testdata/vectors/', import.meta.url);

export function vector(path: string): Buffer {
  return readFileSync(new URL(path, VECTORS));
}

/** One report's entry in SUMMARY.json: the tests only compare its values, so only what they reach into is typed. */
export interface SnpSummary {
  report: Record<string, unknown> & { signerInfo: { signingKey: number; authorKeyEn: number } };
  vekExtensions: Record<string, unknown>;
}

export interface SnpCase {
  name: string;
  report: Buffer;
  vek: Buffer;
  chain: Buffer;
  /** A time inside every certificate's window (SUMMARY.json verifyAt). */
  at: Date;
  /** The VCEK/VLEK validity window. */
  vekFrom: Date;
  vekTo: Date;
  summary: string;
}

export function snpCases(): SnpCase[] {
  return [
    {
      name: 'go-sev-guest attestation.bin (v2, VCEK)',
      report: vector('snp/go-sev-guest/attestation.bin'),
      vek: vector('snp/go-sev-guest/vcek.testcer'),
      chain: vector('snp/go-sev-guest/milan.testcer'),
      at: new Date('2022-09-25T00:55:28.000Z'),
      vekFrom: new Date('2022-09-24T00:55:28.000Z'),
      vekTo: new Date('2029-09-24T00:55:28.000Z'),
      summary: 'snp/go-sev-guest/attestation.bin',
    },
    {
      name: 'trustee test-report.bin (v2, VCEK)',
      report: vector('snp/trustee/test-report.bin'),
      vek: vector('snp/trustee/test-vcek.der'),
      chain: vector('snp/trustee/milan_ask_ark_asvk.pem'),
      at: new Date('2023-01-25T17:58:26.000Z'),
      vekFrom: new Date('2023-01-24T17:58:26.000Z'),
      vekTo: new Date('2030-01-24T17:58:26.000Z'),
      summary: 'snp/trustee/test-report.bin',
    },
    {
      name: 'trustee test-vlek-report.bin (v3, VLEK)',
      report: vector('snp/trustee/test-vlek-report.bin'),
      vek: vector('snp/trustee/test-vlek.der'),
      chain: vector('snp/trustee/milan_ask_ark_asvk.pem'),
      at: new Date('2024-12-11T22:14:21.000Z'),
      vekFrom: new Date('2024-12-10T22:14:21.000Z'),
      vekTo: new Date('2025-12-10T22:14:21.000Z'),
      summary: 'snp/trustee/test-vlek-report.bin',
    },
    {
      name: 'virtee report_milan.hex (v2, VCEK)',
      report: Buffer.from(vector('snp/virtee-sev/report_milan.hex').toString('latin1').trim(), 'hex'),
      vek: vector('snp/virtee-sev/vcek_milan.der'),
      chain: vector('snp/virtee-sev/cert_chain_milan'),
      at: new Date('2023-04-04T19:23:43.000Z'),
      vekFrom: new Date('2023-04-03T19:23:43.000Z'),
      vekTo: new Date('2030-04-03T19:23:43.000Z'),
      summary: 'snp/virtee-sev/report_milan.hex',
    },
  ];
}

export { prng } from '../testing.js';

/** DER certificates out of a PEM bundle, in order. */
export function pemToDer(pem: Buffer): Buffer[] {
  return (pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) =>
    Buffer.from(p.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64'),
  );
}
