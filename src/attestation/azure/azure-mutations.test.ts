import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { prng } from '../snp/fixtures.js';
import { verifyAzureVtpm, type AzureEvidence } from './verify.js';

import { cases, verifyTdxQuote, pemOrDerVcek, chainOnly } from './azure-cases.js';

/**
 * Bytes of the HCL TDREPORT that no check covers (the TD quote is what is verified; the TDREPORT is only
 * compared field by field): REPORTMACSTRUCT except its type byte and REPORTDATA (1..128, 192..256), TEE_TCB_INFO
 * `valid` and its tail (256..264, 384..512), TDINFO after the RTMRs (912..1024). Offsets within the TDREPORT.
 */
const TDREPORT_UNCHECKED: [number, number][] = [
  [1, 128],
  [192, 256],
  [256, 264],
  [384, 512],
  [912, 1024],
];

describe('verifyAzureVtpm: mutations', () => {
  cases.forEach((c, n) => {
    if (![0, 4, 5].includes(n)) return; // one SNP Milan, the Genoa one, one TDX: each 1,200 mutations
    it(`refuses 1,200 random single-byte mutations of ${c.name} (HCL report incl. var data, TPM quote, signature, PCRs${c.type === 'az-snp-vtpm' ? ', VCEK' : ', TD quote'})`, async () => {
      const rnd = prng(0xa2 + n);
      const base = c.evidence();
      const vcekDer = c.type === 'az-snp-vtpm' ? pemOrDerVcek(base, c) : undefined;
      // The TD quote up to its PCK chain: header, body, signature, attestation key, QE report, its signature and
      // auth data. The chain is PEM text, where a changed whitespace byte decodes to the same certificates.
      const pemAt = base.tdQuote ? base.tdQuote.indexOf('-----BEGIN CERTIFICATE-----') : -1;
      const targets = [
        ...['hcl', 'hcl', 'hcl', 'message', 'signature', 'pcrs'],
        ...(vcekDer ? ['vcek'] : []),
        ...(pemAt > 0 ? ['tdquote', 'tdquote'] : []),
      ];
      let refused = 0;
      for (let i = 0; i < 1200; i++) {
        const target = targets[Math.floor(rnd() * targets.length)]!;
        const e: AzureEvidence = { ...base, tpmQuote: { ...base.tpmQuote } };
        const flip = (b: Buffer, allowed: (at: number) => boolean = () => true): Buffer => {
          const copy = Buffer.from(b);
          let at = Math.floor(rnd() * copy.length);
          while (!allowed(at)) at = Math.floor(rnd() * copy.length);
          copy[at] = copy[at]! ^ (1 + Math.floor(rnd() * 255));
          return copy;
        };
        const certs = [...c.certs];
        if (target === 'hcl') {
          e.hclReport = flip(
            base.hclReport,
            (at) => c.type !== 'az-tdx-vtpm' || !TDREPORT_UNCHECKED.some(([s, t]) => at >= 0x20 + s && at < 0x20 + t),
          );
        } else if (target === 'tdquote') e.tdQuote = flip(base.tdQuote!, (at) => at < pemAt);
        else if (target === 'message') e.tpmQuote.message = flip(base.tpmQuote.message);
        else if (target === 'signature') e.tpmQuote.signature = flip(base.tpmQuote.signature);
        else if (target === 'pcrs') {
          const pcrs = base.tpmQuote.pcrs!.map((p) => p);
          const k = Math.floor(rnd() * pcrs.length);
          pcrs[k] = flip(pcrs[k]!);
          e.tpmQuote.pcrs = pcrs;
        } else {
          e.vcek = flip(vcekDer!);
          certs.splice(0, certs.length, ...chainOnly(c));
        }
        if (target !== 'vcek' && vcekDer) {
          e.vcek = vcekDer;
          certs.splice(0, certs.length, ...chainOnly(c));
        }
        try {
          await verifyAzureVtpm(e, { type: c.type, now: c.at, certs, verifyTdxQuote });
          assert.fail(`${target} mutation ${i} still verified`);
        } catch (err) {
          if (!(err instanceof AttestationError))
            throw new Error(`${target} mutation ${i}: ${String(err)}`, { cause: err });
          refused++;
        }
      }
      assert.equal(refused, 1200);
    });
  });
});
