import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { AttestationError } from '../errors.js';
import { AMD_ARKS } from '../roots.js';
import type { AmdCollateralRequest } from '../types.js';
import { CERT_TABLE_GUIDS, buildCertTable } from './certs.js';
import { VECTORS, pemToDer, prng, snpCases, vector, type SnpCase, type SnpSummary } from './fixtures.js';
import { SNP_NO_CRL_WARNING, SNP_WARNING, verifySnpReport } from './verify.js';
import { code } from '../test-errors.js';

const summary = JSON.parse(readFileSync(new URL('SUMMARY.json', VECTORS), 'utf8')) as {
  amd: Record<string, SnpSummary>;
};
const ms = (d: Date, delta: number) => new Date(d.getTime() + delta);

/** The intermediate for a case (ASK, or ASVK for the VLEK) and the ARK, as DER. */
function chainParts(c: SnpCase): { inter: Buffer; ark: Buffer } {
  const ders = pemToDer(c.chain);
  const cn = (d: Buffer) => new (require_x509())(d).subject.split('\n').find((l: string) => l.startsWith('CN='));
  const vlek = c.summary.includes('vlek');
  const inter = ders.find((d) => cn(d) === (vlek ? 'CN=SEV-VLEK-Milan' : 'CN=SEV-Milan'))!;
  const ark = ders.find((d) => cn(d) === 'CN=ARK-Milan')!;
  return { inter, ark };
}
function require_x509() {
  return X509;
}
import { X509Certificate as X509 } from 'node:crypto';

describe('verifySnpReport: the vectors', () => {
  for (const c of snpCases()) {
    it(`${c.name} verifies at ${c.at.toISOString()} with claims as SUMMARY.json states`, async () => {
      const result = await verifySnpReport(c.report, { now: c.at, certs: [c.vek, c.chain] });
      assert.equal(result.type, 'snp');
      if (result.type !== 'snp') return;
      const s = summary.amd[c.summary]!;
      const cl = result.claims;
      assert.equal(cl.product, 'Milan');
      assert.equal(cl.version, s.report.version);
      assert.equal(cl.signing_key, s.report.signerInfo.signingKey === 0 ? 'vcek' : 'vlek');
      assert.equal(cl.measurement, s.report.measurement);
      assert.equal(cl.host_data, s.report.hostData);
      assert.equal(cl.id_key_digest, s.report.idKeyDigest);
      assert.equal(cl.author_key_digest, s.report.authorKeyDigest);
      assert.equal(cl.family_id, s.report.familyId);
      assert.equal(cl.image_id, s.report.imageId);
      assert.equal(cl.report_id, s.report.reportId);
      assert.equal(cl.chip_id, s.report.chipId);
      assert.equal(cl.guest_svn, s.report.guestSvn);
      assert.equal(cl.vmpl, s.report.vmpl);
      assert.equal(cl.policy.raw, s.report.policy);
      assert.equal(cl.platform_info.raw, s.report.platformInfo);
      assert.deepEqual(cl.reported_tcb, s.report.reportedTcb);
      assert.deepEqual(cl.current_tcb, s.report.currentTcb);
      assert.deepEqual(cl.committed_tcb, s.report.committedTcb);
      assert.deepEqual(cl.launch_tcb, s.report.launchTcb);
      assert.equal(cl.csp_id, s.vekExtensions.cspID);
      assert.equal(result.reportData.toString('hex'), s.report.reportData);
      assert.equal(result.tcb, undefined);
      assert.equal(result.simulated, false);
      assert.deepEqual(result.warnings, [SNP_WARNING, SNP_NO_CRL_WARNING]);
      const cns = result.chain.map((e) => /CN=([^,]+)$/.exec(e.subject)?.[1]);
      assert.deepEqual(
        cns,
        cl.signing_key === 'vcek'
          ? ['SEV-VCEK', 'SEV-Milan', 'ARK-Milan']
          : ['SEV-VLEK', 'SEV-VLEK-Milan', 'ARK-Milan'],
      );
      assert.equal(result.chain[2]!.fingerprint256, AMD_ARKS.Milan.certificate.fingerprint256);
    });
  }

  it('go-sev-guest: debug policy and report data as the README says', async () => {
    const c = snpCases()[0]!;
    const r = await verifySnpReport(c.report, { now: c.at, certs: [c.vek, c.chain] });
    assert.ok(r.type === 'snp' && r.claims.policy.debug && r.claims.policy.smt);
    assert.equal(r.reportData.subarray(0, 5).toString('hex'), '0102030405');
  });

  it('takes the VCEK and chain from the certificate table (auxblob)', async () => {
    const c = snpCases()[0]!;
    const { inter, ark } = chainParts(c);
    const auxblob = buildCertTable([
      { guid: CERT_TABLE_GUIDS.vcek, data: c.vek },
      { guid: CERT_TABLE_GUIDS.ask, data: inter },
      { guid: CERT_TABLE_GUIDS.ark, data: ark },
    ]);
    const r = await verifySnpReport(c.report, { now: c.at, auxblob });
    assert.equal(r.type, 'snp');
  });

  it('skips a stale or foreign VCEK in the table when certs has the right one', async () => {
    const c = snpCases()[3]!; // virtee; the trustee VCEK has the same TCB, another chip
    const auxblob = buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, data: vector('snp/trustee/test-vcek.der') }]);
    const r = await verifySnpReport(c.report, { now: c.at, auxblob, certs: [c.vek, c.chain] });
    assert.equal(r.type, 'snp');
    await assert.rejects(
      verifySnpReport(c.report, { now: c.at, auxblob, certs: [c.chain] }),
      code('ATTESTATION_CHAIN', 'VCEK hwID'),
    );
  });

  it('asks the collateral source for what is missing (a function or a provider)', async () => {
    const c = snpCases()[1]!;
    const seen: AmdCollateralRequest[] = [];
    const source = async (req: AmdCollateralRequest) => {
      seen.push(req);
      return req.product === 'Milan' ? { vcek: c.vek, chain: c.chain.toString() } : undefined;
    };
    const r = await verifySnpReport(c.report, { now: c.at, collateral: source });
    assert.equal(r.type, 'snp');
    assert.deepEqual(seen[0], {
      product: 'Milan',
      signingKey: 'vcek',
      hwid: summary.amd[c.summary]!.report.chipId,
      tcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
    });
    const r2 = await verifySnpReport(c.report, {
      now: c.at,
      certs: [c.vek],
      collateral: { amd: async () => ({ chain: c.chain.toString() }) },
    });
    assert.equal(r2.type, 'snp');
    // a v2 report names no product: without a VCEK, Milan then Genoa are asked for
    seen.length = 0;
    await assert.rejects(
      verifySnpReport(c.report, {
        now: c.at,
        collateral: async (req) => {
          seen.push(req);
          return undefined;
        },
      }),
      code('ATTESTATION_COLLATERAL', 'tried Milan and Genoa'),
    );
    assert.deepEqual(
      seen.map((s) => s.product),
      ['Milan', 'Genoa'],
    );
    await assert.rejects(
      verifySnpReport(c.report, {
        now: c.at,
        collateral: async () => {
          throw new Error('boom');
        },
      }),
      code('ATTESTATION_COLLATERAL', 'boom'),
    );
  });
});

describe('verifySnpReport: refusals', () => {
  const [gsg, tr, vlek, virt] = snpCases() as [SnpCase, SnpCase, SnpCase, SnpCase];

  it('refuses the VLEK after its expiry, naming it and its end', async () => {
    await assert.rejects(
      verifySnpReport(vlek.report, { now: new Date('2025-12-11T00:00:00Z'), certs: [vlek.vek, vlek.chain] }),
      code('ATTESTATION_EXPIRED', "'SEV-VLEK'", '2025-12-10T22:14:21.000Z'),
    );
  });

  for (const c of snpCases()) {
    it(`refuses ${c.name} outside its certificate window`, async () => {
      await assert.rejects(
        verifySnpReport(c.report, { now: ms(c.vekFrom, -1000), certs: [c.vek, c.chain] }),
        code('ATTESTATION_EXPIRED', 'not valid before'),
      );
      await assert.rejects(
        verifySnpReport(c.report, { now: ms(c.vekTo, 1000), certs: [c.vek, c.chain] }),
        code('ATTESTATION_EXPIRED', 'expired'),
      );
      await assert.rejects(
        verifySnpReport(c.report, { now: new Date('2046-01-01'), certs: [c.vek, c.chain] }),
        code('ATTESTATION_EXPIRED'),
      );
      await assert.rejects(
        verifySnpReport(c.report, { now: new Date('invalid'), certs: [c.vek, c.chain] }),
        code('ATTESTATION_MALFORMED'),
      );
    });
  }

  it('refuses a VCEK of another chip', async () => {
    await assert.rejects(
      verifySnpReport(virt.report, { now: virt.at, certs: [tr.vek, virt.chain] }),
      code('ATTESTATION_CHAIN', 'VCEK hwID', 'chip'),
    );
  });

  it('refuses a VCEK for another TCB', async () => {
    await assert.rejects(
      verifySnpReport(tr.report, { now: tr.at, certs: [gsg.vek, tr.chain] }),
      code('ATTESTATION_CHAIN', 'REPORTED_TCB', 'blSPL 2 ≠ 3'),
    );
  });

  it("refuses another product's chain", async () => {
    await assert.rejects(
      verifySnpReport(gsg.report, { now: gsg.at, certs: [gsg.vek, vector('snp/go-sev-guest/ask_ark_genoa.pem')] }),
      code('ATTESTATION_CHAIN', "'SEV-Genoa'", "'SEV-Milan'"),
    );
    await assert.rejects(
      verifySnpReport(vlek.report, {
        now: vlek.at,
        certs: [vlek.vek, vector('snp/go-sev-guest/ask_ark_genoa_vlek.pem')],
      }),
      code('ATTESTATION_CHAIN', "'SEV-VLEK-Genoa'"),
    );
  });

  it('refuses a VCEK for a VLEK-signed report and a VLEK for a VCEK-signed one', async () => {
    await assert.rejects(
      verifySnpReport(vlek.report, { now: vlek.at, certs: [tr.vek, tr.chain] }),
      code('ATTESTATION_CHAIN', 'signed by a VLEK', 'only a VCEK'),
    );
    await assert.rejects(
      verifySnpReport(tr.report, { now: vlek.at, certs: [vlek.vek, vlek.chain] }),
      code('ATTESTATION_CHAIN', 'signed by a VCEK', 'only a VLEK'),
    );
  });

  it('refuses a report whose signing key field was changed (VCEK → VLEK), by signature', async () => {
    const flipped = Buffer.from(tr.report);
    flipped.writeUInt32LE(1 << 2, 0x48);
    await assert.rejects(
      verifySnpReport(flipped, { now: tr.at, certs: [tr.vek, tr.chain] }),
      code('ATTESTATION_CHAIN', 'signed by a VLEK'),
    );
    await assert.rejects(
      verifySnpReport(flipped, { now: vlek.at, certs: [tr.vek, vlek.vek, tr.chain] }),
      (e: unknown) => e instanceof AttestationError,
    );
  });

  it('refuses MASK_CHIP_KEY reports as unsigned', async () => {
    const masked = Buffer.from(tr.report);
    masked.writeUInt32LE(2, 0x48);
    await assert.rejects(
      verifySnpReport(masked, { now: tr.at, certs: [tr.vek, tr.chain] }),
      code('ATTESTATION_SIGNATURE', 'MASK_CHIP_KEY'),
    );
  });

  it('refuses without the VCEK or without the ASK', async () => {
    await assert.rejects(verifySnpReport(tr.report, { now: tr.at, certs: [tr.chain] }), code('ATTESTATION_COLLATERAL'));
    await assert.rejects(
      verifySnpReport(tr.report, { now: tr.at, certs: [tr.vek] }),
      code('ATTESTATION_COLLATERAL', "no 'SEV-Milan'"),
    );
    await assert.rejects(
      verifySnpReport(vlek.report, { now: vlek.at, certs: [vlek.vek] }),
      code('ATTESTATION_COLLATERAL', "no 'SEV-VLEK-Milan'"),
    );
  });

  it('refuses the odd-encoding trustee VCEKs (they parse; their signatures do not verify)', async () => {
    for (const f of ['snp/trustee/test-vcek-invalid-legacy.der', 'snp/trustee/test-vcek-invalid-new.der']) {
      await assert.rejects(
        verifySnpReport(tr.report, { now: new Date('2024-01-01'), certs: [vector(f), tr.chain] }),
        (e: unknown) => e instanceof AttestationError && ['ATTESTATION_CHAIN'].includes(e.code),
      );
    }
  });

  it('refuses a chain whose ARK is not the pinned one, by key, even with the same subject', async () => {
    const fake = await fakeRoot(AMD_ARKS.Milan.certificate.raw);
    const { inter } = chainParts(tr);
    await assert.rejects(
      verifySnpReport(tr.report, { now: tr.at, certs: [tr.vek, inter, fake] }),
      code('ATTESTATION_CHAIN', 'is not the AMD root key ARK-Milan', 'key SHA-256'),
    );
  });

  it('checks a CRL from the collateral: signature by the ARK, and parse errors', async () => {
    const crl = await fakeCrl(AMD_ARKS.Milan.certificate.raw);
    await assert.rejects(
      verifySnpReport(tr.report, { now: tr.at, certs: [tr.vek, tr.chain], collateral: async () => ({ crl }) }),
      code('ATTESTATION_SIGNATURE', 'CRL is not signed'),
    );
    // a CRL that does not parse is one that could not be had: the report verifies, with the no-CRL warning and why
    const r = await verifySnpReport(tr.report, {
      now: tr.at,
      certs: [tr.vek, tr.chain],
      collateral: async () => ({ crl: Buffer.from('garbage') }),
    });
    assert.equal(r.warnings[1], SNP_NO_CRL_WARNING);
    assert.match(r.warnings[2] ?? '', /could not be obtained .*CRL does not parse/);
  });
});

// ---- mutations -------------------------------------------------------------------------------------------

describe('verifySnpReport: mutations', () => {
  snpCases().forEach((c, n) => {
    it(`refuses 1,200 random single-byte mutations of ${c.name} (report, signature, VCEK/VLEK, ASK/ASVK)`, async () => {
      const { inter, ark } = chainParts(c);
      const vekDer = pemToDer(c.vek).length ? pemToDer(c.vek)[0]! : c.vek;
      const rnd = prng(0x5eed + n);
      const targets = [
        { name: 'report', bytes: c.report, weight: 600 },
        { name: 'vek', bytes: vekDer, weight: 300 },
        { name: 'inter', bytes: inter, weight: 300 },
      ];
      const counts: Record<string, number> = {};
      for (const t of targets) {
        for (let i = 0; i < t.weight; i++) {
          const copy = Buffer.from(t.bytes);
          const at = Math.floor(rnd() * copy.length);
          copy[at] = copy[at]! ^ (1 + Math.floor(rnd() * 255));
          const parts = { report: c.report, vek: vekDer, inter, [t.name]: copy };
          try {
            await verifySnpReport(parts.report, { now: c.at, certs: [parts.vek, parts.inter, ark] });
            assert.fail(`${t.name} byte ${at} mutated and still verified`);
          } catch (err) {
            if (!(err instanceof AttestationError))
              throw new Error(`${t.name} byte ${at}: ${String(err)}`, { cause: err });
            counts[err.code] = (counts[err.code] ?? 0) + 1;
          }
        }
      }
      assert.ok(Object.values(counts).reduce((a, b) => a + b, 0) === 1200);
    });
  });
});

describe('verifySnpReport: speed', () => {
  it('measures verifications per second with cached certificates', async () => {
    const c = snpCases()[1]!;
    const opts = { now: c.at, certs: [c.vek, c.chain] };
    await verifySnpReport(c.report, opts);
    const n = 500;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await verifySnpReport(c.report, opts);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const rate = Math.round(n / secs);
    console.log(`# SNP verifications/s (cached certificates): ${rate}`);
    assert.ok(rate > 50, `${rate}/s`);
  });
});

// ---- helpers: a self-signed root with ARK-Milan's subject and another key; a CRL it signs ---------------

async function rsaKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    true,
    ['sign', 'verify'],
  ) as Promise<CryptoKeyPair>;
}

let fakeKeys: Promise<CryptoKeyPair> | undefined;

/** One key pair for every fake: RSA generation is slow. */
function sharedKeys(): Promise<CryptoKeyPair> {
  fakeKeys ??= rsaKeys();
  return fakeKeys;
}

async function fakeRoot(realDer: Buffer): Promise<Buffer> {
  const keys = await sharedKeys();
  const real = pkijs.Certificate.fromBER(realDer);
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ value: 1 });
  cert.issuer = real.subject;
  cert.subject = real.subject;
  cert.notBefore.value = new Date('2020-01-01T00:00:00Z');
  cert.notAfter.value = new Date('2045-01-01T00:00:00Z');
  cert.extensions = [
    new pkijs.Extension({
      extnID: '2.5.29.19',
      critical: true,
      extnValue: new pkijs.BasicConstraints({ cA: true }).toSchema().toBER(false),
    }),
  ];
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey);
  await cert.sign(keys.privateKey, 'SHA-256');
  return Buffer.from(cert.toSchema(true).toBER(false));
}

async function fakeCrl(realDer: Buffer): Promise<Buffer> {
  const keys = await sharedKeys();
  const real = pkijs.Certificate.fromBER(realDer);
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = real.subject;
  crl.thisUpdate = new pkijs.Time({ type: 0, value: new Date('2020-01-01T00:00:00Z') });
  crl.nextUpdate = new pkijs.Time({ type: 0, value: new Date('2040-01-01T00:00:00Z') });
  await crl.sign(keys.privateKey, 'SHA-256');
  return Buffer.from(crl.toSchema(true).toBER(false));
}
