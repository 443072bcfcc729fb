import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { pinRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import type { AmdCollateralRequest } from '../types.js';
import { CERT_TABLE_GUIDS, buildCertTable } from './certs.js';
import { vector } from './fixtures.js';
import { AMD_ARC, HWID, MEASUREMENT, NOW, code, pem, pss384, turinTcb, vcekExtensions } from './synthetic.js';
import { SNP_NO_CRL_WARNING, SNP_WARNING, verifySnpReportAgainst } from './verify.js';
import { file, h, openssl, opensslStatus, report, useTurinHierarchy, vcekWith, verifyT } from './turin-kit.js';

/** Turin SNP reports against a synthetic AMD-like hierarchy (turin-kit.ts): the kit, and reports that verify. */
useTurinHierarchy();

describe('Turin: the synthetic hierarchy itself', () => {
  it('parses with node (X509Certificate), chains by signature, and has the AMD shape (RSA-4096 PSS/SHA-384, EC P-384 VCEK)', () => {
    const [ark, ask, vcek] = [h.ark, h.ask, h.vcek].map((d) => new X509Certificate(d)) as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];
    assert.match(ark.subject, /CN=ARK-Turin$/);
    assert.equal(ark.subject, ark.issuer);
    assert.match(ask.subject, /CN=SEV-Turin$/);
    assert.equal(ask.issuer, ark.subject);
    assert.match(vcek.subject, /CN=SEV-VCEK$/);
    assert.equal(vcek.issuer, ask.subject);
    assert.ok(ark.verify(ark.publicKey) && ask.verify(ark.publicKey) && vcek.verify(ask.publicKey));
    assert.ok(!vcek.verify(ark.publicKey) && !ask.verify(h.foreignKey.publicKey));
    assert.ok(ark.ca && ask.ca && !vcek.ca);
    assert.equal(ark.publicKey.asymmetricKeyDetails?.modulusLength, 4096);
    assert.equal(ask.publicKey.asymmetricKeyDetails?.modulusLength, 4096);
    assert.equal(vcek.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    assert.deepEqual([ark.serialNumber, ask.serialNumber, vcek.serialNumber], ['030000', '030001', '0']);
    // the names are encoded as AMD's, byte for byte
    const real = new X509Certificate(vector('snp/virtee-sev/vcek_turin.der'));
    assert.equal(vcek.subject, real.subject);
    assert.equal(vcek.issuer, real.issuer);
  });

  it('is what openssl makes of AMD certificates: x509 -text shows RSA-PSS/SHA-384 salt 0x30 and the Turin extensions; verify OK', () => {
    const ark = file('ark.pem', pem(h.ark));
    const ask = file('ask.pem', pem(h.ask));
    const vcek = file('vcek.pem', pem(h.vcek));
    for (const f of [ark, ask, vcek]) {
      const text = openssl('x509', '-in', f, '-noout', '-text');
      assert.match(text, /Signature Algorithm: rsassaPss/);
      assert.match(text, /Hash Algorithm: sha384/);
      assert.match(text, /Mask Algorithm: mgf1 with sha384/);
      assert.match(text, /Salt Length: 0x30/);
    }
    const vtext = openssl('x509', '-in', vcek, '-noout', '-text');
    assert.match(vtext, /ASN1 OID: secp384r1/);
    for (const oid of ['1', '2', '3.1', '3.2', '3.3', '3.8', '3.9', '4'])
      assert.ok(vtext.includes(`${AMD_ARC}${oid}:`), `openssl does not show ${AMD_ARC}${oid}`);
    assert.match(openssl('x509', '-in', ark, '-noout', '-text'), /Public-Key: \(4096 bit\)/);
    assert.match(openssl('verify', '-CAfile', ark, ark), /: OK/);
    assert.match(openssl('verify', '-CAfile', ark, ask), /: OK/);
    assert.match(openssl('verify', '-CAfile', ark, '-untrusted', ask, vcek), /: OK/);
    // and the real AMD Turin chain passes the same command (the shape is AMD's, not only openssl-acceptable)
    const realArk = file('real-ark.pem', vector('snp/virtee-sev/ark_turin.pem'));
    const realAsk = file('real-ask.pem', vector('snp/virtee-sev/ask_turin.pem'));
    const realVcek = file('real-vcek.pem', pem(vector('snp/virtee-sev/vcek_turin.der')));
    assert.match(openssl('verify', '-CAfile', realArk, '-untrusted', realAsk, realVcek), /: OK/);
    // the synthetic VCEK does not verify against the real AMD ARK/ASK (nor the real against the synthetic)
    assert.notEqual(opensslStatus('verify', '-CAfile', realArk, '-untrusted', realAsk, vcek).status, 0);
    assert.notEqual(opensslStatus('verify', '-CAfile', ark, '-untrusted', ask, realVcek).status, 0);
  });

  it('encodes the VCEK extensions byte for byte as the real Turin VCEK does (given its values)', () => {
    const real = pkijs.Certificate.fromBER(vector('snp/virtee-sev/vcek_turin.der'));
    const realExts = (real.extensions ?? []).map((e) => Buffer.from(e.toSchema().toBER(false)).toString('hex'));
    const ours = vcekExtensions({
      productName: 'Turin',
      structVersion: 1,
      tcb: { fmc: 0, bootloader: 0, tee: 0, snp: 0, microcode: 9 },
      hwId: Buffer.from('1e550a8ee5cf9f4d', 'hex'),
    }).map((e) => Buffer.from(e.toSchema().toBER(false)).toString('hex'));
    assert.deepEqual(ours, realExts);
    // and the signature algorithm (PSS parameters) is the real one's
    assert.equal(
      Buffer.from(pss384().toSchema().toBER(false)).toString('hex'),
      Buffer.from(real.signatureAlgorithm.toSchema().toBER(false)).toString('hex'),
    );
  });

  it('pins the synthetic ARK with pinRoot (and pinRoot refuses a wrong key hash)', () => {
    assert.equal(h.root.certificate.fingerprint256, new X509Certificate(h.ark).fingerprint256);
    assert.notEqual(h.root.spkiSha256, AMD_ARKS.Turin.spkiSha256);
    assert.throws(
      () => pinRoot('x', new X509Certificate(h.ark).toString(), AMD_ARKS.Turin.spkiSha256),
      /does not have the pinned key/,
    );
  });
});

describe('Turin: reports that verify', () => {
  it('a version 3 report (CPUID family 0x1A) verifies; claims name Turin, decode the TCB in the Turin layout with fmc, and carry the 8-byte chip id', async () => {
    const result = await verifyT(h.report);
    assert.equal(result.type, 'snp');
    if (result.type !== 'snp') return;
    const cl = result.claims;
    assert.equal(cl.product, 'Turin');
    assert.equal(cl.version, 3);
    assert.equal(cl.signing_key, 'vcek');
    assert.deepEqual(cl.reported_tcb, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 });
    assert.deepEqual(cl.current_tcb, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 });
    assert.deepEqual(cl.committed_tcb, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 });
    assert.deepEqual(cl.launch_tcb, { fmc: 1, bootloader: 2, tee: 3, snp: 3, microcode: 5 });
    // CHIP_ID is reported as the report has it: 64 bytes, the hwID then 56 zero bytes
    assert.equal(cl.chip_id, `${HWID.toString('hex')}${'00'.repeat(56)}`);
    assert.equal(cl.chip_id.length, 128);
    assert.equal(cl.measurement, MEASUREMENT.toString('hex'));
    assert.equal(cl.host_data, '4d'.repeat(32));
    assert.equal(cl.guest_svn, 7);
    assert.equal(cl.vmpl, 0);
    assert.deepEqual(cl.policy, {
      raw: '0x30000',
      abi_major: 0,
      abi_minor: 0,
      smt: true,
      migrate_ma: false,
      debug: false,
      single_socket: false,
    });
    assert.deepEqual(cl.platform_info, { smt_enabled: true, tsme_enabled: true, raw: '0x3' });
    assert.equal(cl.csp_id, undefined);
    assert.equal(result.reportData.toString('hex'), 'ab'.repeat(64));
    assert.equal(result.tcb, undefined);
    assert.equal(result.simulated, false);
    assert.deepEqual(result.warnings, [SNP_WARNING, SNP_NO_CRL_WARNING]);
    assert.deepEqual(
      result.chain.map((e) => /CN=([^,]+)$/.exec(e.subject)?.[1]),
      ['SEV-VCEK', 'SEV-Turin', 'ARK-Turin'],
    );
    assert.equal(result.chain[2]!.fingerprint256, h.root.certificate.fingerprint256);
  });

  it('every Turin CPUID model 0x00..0x11 verifies; model 0x12 is not a known product', async () => {
    for (let model = 0; model <= 0x11; model++) {
      const r = await verifyT(report({ cpuid: [0x1a, model, model & 3] }));
      assert.ok(r.type === 'snp' && r.claims.product === 'Turin', `model 0x${model.toString(16)}`);
    }
    await assert.rejects(
      verifyT(report({ cpuid: [0x1a, 0x12, 0] })),
      code('ATTESTATION_UNSUPPORTED', 'family 0x1a model 0x12'),
    );
  });

  it('a version 5 report (mitigation vectors) verifies as Turin', async () => {
    const r = await verifyT(report({ version: 5 }));
    assert.ok(r.type === 'snp' && r.claims.product === 'Turin' && r.claims.version === 5);
  });

  it('a version 2 report (no CPUID) verifies: the VCEK names the product, and the TCB is read in the Turin layout', async () => {
    const r = await verifyT(report({ version: 2 }));
    assert.ok(r.type === 'snp');
    if (r.type !== 'snp') return;
    assert.equal(r.claims.product, 'Turin');
    assert.equal(r.claims.version, 2);
    assert.deepEqual(r.claims.reported_tcb, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 });
  });

  it('a version 2 report without certificates: the CHIP_ID heuristic (8 bytes) asks the source for a Turin VCEK with an 8-byte hwid and fmcSPL', async () => {
    const v2 = report({ version: 2 });
    const seen: AmdCollateralRequest[] = [];
    const source = async (req: AmdCollateralRequest) => {
      seen.push(req);
      return req.product === 'Turin' ? { vcek: h.vcek, chain: pem(h.ask) + pem(h.ark) } : undefined;
    };
    const r = await verifySnpReportAgainst(v2, { now: NOW, collateral: source }, h.roots);
    assert.ok(r.type === 'snp' && r.claims.product === 'Turin');
    assert.deepEqual(seen, [
      {
        product: 'Turin',
        signingKey: 'vcek',
        hwid: HWID.toString('hex'),
        tcb: { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 },
      },
    ]);
    // the same request for a version 3 report, named by CPUID
    seen.length = 0;
    await verifySnpReportAgainst(h.report, { now: NOW, collateral: source }, h.roots);
    assert.deepEqual(
      seen.map((s) => [s.product, s.hwid]),
      [['Turin', HWID.toString('hex')]],
    );
  });

  it('a version 2 report whose CHIP_ID uses more than 8 bytes is not taken for Turin without a VCEK (Milan and Genoa are asked)', async () => {
    const chipId = Buffer.concat([HWID, Buffer.alloc(56, 0x77)]);
    const seen: string[] = [];
    await assert.rejects(
      verifySnpReportAgainst(
        report({ version: 2, chipId }),
        {
          now: NOW,
          collateral: async (req) => {
            seen.push(req.product);
            return undefined;
          },
        },
        h.roots,
      ),
      code('ATTESTATION_COLLATERAL', 'tried Milan and Genoa'),
    );
    assert.deepEqual(seen, ['Milan', 'Genoa']);
  });

  it('takes the VCEK, ASK and ARK from a certificate table (auxblob)', async () => {
    const auxblob = buildCertTable([
      { guid: CERT_TABLE_GUIDS.vcek, data: h.vcek },
      { guid: CERT_TABLE_GUIDS.ask, data: h.ask },
      { guid: CERT_TABLE_GUIDS.ark, data: h.ark },
    ]);
    const r = await verifySnpReportAgainst(h.report, { now: NOW, auxblob }, h.roots);
    assert.ok(r.type === 'snp' && r.claims.product === 'Turin');
  });

  it('accepts SPLs of 128..255 (two-byte DER INTEGERs), the wrapped hwID form and the bare productName "Turin"', async () => {
    const tcb = { fmc: 0x80, bootloader: 0xff, tee: 0x7f, snp: 0xc8, microcode: 0xd1 };
    for (const v of [{ tcb }, { tcb, wrapHwId: true }, { tcb, productName: 'Turin' }]) {
      const r = await verifyT(report({ reportedTcb: turinTcb(tcb) }), {}, [vcekWith(v), h.ask, h.ark]);
      assert.ok(r.type === 'snp');
      if (r.type === 'snp') assert.deepEqual(r.claims.reported_tcb, tcb);
    }
  });

  it('verifies with the ARK left out of certs (the pinned root completes the chain)', async () => {
    const r = await verifyT(h.report, {}, [h.vcek, h.ask]);
    assert.equal(r.type, 'snp');
  });
});
