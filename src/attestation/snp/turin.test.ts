import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { pinRoot, spkiSha256, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import type { AmdCollateralRequest } from '../types.js';
import { CERT_TABLE_GUIDS, buildCertTable } from './certs.js';
import { vector } from './fixtures.js';
import type { SnpProduct } from './report.js';
import {
  AMD_ARC,
  ARK_FROM,
  ARK_SERIAL,
  ARK_TO,
  ASK_SERIAL,
  CHIP_ID,
  HWID,
  MEASUREMENT,
  NOW,
  TCB,
  VCEK_FROM,
  VCEK_TO,
  buildArk,
  buildAsk,
  buildCert,
  buildCrl,
  buildVcek,
  code,
  ext,
  keyPair,
  milanTcb,
  p384,
  pem,
  pss384,
  reportBody,
  rsa4096,
  signReport,
  turinTcb,
  vcekExtensions,
  type KeyPair,
  type ReportSpec,
  type VcekSpec,
} from './synthetic.js';
import { SNP_NO_CRL_WARNING, SNP_WARNING, verifySnpReport, verifySnpReportAgainst } from './verify.js';

/**
 * A complete synthetic AMD-like hierarchy for Turin, with real cryptography: an RSA-4096 self-signed ARK-Turin
 * (RSASSA-PSS/SHA-384, salt 48, as AMD's), an SEV-Turin ASK it signs, SEV-VCEK certificates (EC P-384) the ASK
 * signs, carrying the Turin extensions encoded exactly as in the real Turin VCEK (virtee vcek_turin.der), Turin
 * SNP reports signed by the VCEK key, and ARK-signed CRLs. The structures are built with pkijs/asn1js; every
 * signature is made with node:crypto over the DER pkijs encodes. AMD has shipped no Turin report, so this is
 * the only end-to-end coverage of the Turin paths (TCB layout with FMC, 8-byte hwID, fmcSPL, CPUID 0x1A).
 */

// ---- openssl ---------------------------------------------------------------------------------------------------

let tmp: string | undefined;
function file(name: string, data: string | Buffer): string {
  tmp ??= mkdtempSync(join(tmpdir(), 'veil-turin-'));
  const path = join(tmp, name);
  writeFileSync(path, data);
  return path;
}
function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
/** openssl's exit status and its stdout and stderr together (openssl crl prints "verify OK" on stderr). */
function opensslStatus(...args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

// ---- the hierarchy ------------------------------------------------------------------------------------------------

interface Hierarchy {
  arkKey: KeyPair;
  askKey: KeyPair;
  /** Another RSA-4096 key: an ARK-Turin with the same subject, a CRL signer that is not the ARK. */
  foreignKey: KeyPair;
  vcekKey: KeyPair;
  otherEcKey: KeyPair;
  ark: Buffer;
  ask: Buffer;
  vcek: Buffer;
  root: PinnedRoot;
  roots: Record<SnpProduct, PinnedRoot>;
  report: Buffer;
}

let h: Hierarchy;

before(async () => {
  const [arkKey, askKey, foreignKey, vcekKey, otherEcKey] = await Promise.all([
    rsa4096(),
    rsa4096(),
    rsa4096(),
    p384(),
    p384(),
  ]);
  const ark = buildArk(arkKey);
  const ask = buildAsk(askKey.publicKey, arkKey);
  const vcek = buildVcek(vcekKey.publicKey, askKey.privateKey);
  const arkCert = new X509Certificate(ark);
  const root = pinRoot('the synthetic ARK-Turin', arkCert.toString(), spkiSha256(arkCert.publicKey));
  const roots = { Milan: AMD_ARKS.Milan, Genoa: AMD_ARKS.Genoa, Turin: root };
  h = {
    arkKey,
    askKey,
    foreignKey,
    vcekKey,
    otherEcKey,
    ark,
    ask,
    vcek,
    root,
    roots,
    report: signReport(reportBody(), vcekKey.privateKey),
  };
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const verifyT = (report: Buffer, extra: Record<string, unknown> = {}, certs?: (Buffer | string)[]) =>
  verifySnpReportAgainst(report, { now: NOW, certs: (certs ?? [h.vcek, h.ask, h.ark]) as Buffer[], ...extra }, h.roots);
/** A report from `spec`, signed by the VCEK key. */
const report = (spec: ReportSpec = {}, key?: KeyObject) => signReport(reportBody(spec), key ?? h.vcekKey.privateKey);
/** Another VCEK, signed by the synthetic ASK, for the same VCEK key. */
const vcekWith = (v: VcekSpec) => buildVcek(h.vcekKey.publicKey, h.askKey.privateKey, v);

// ---- tests -----------------------------------------------------------------------------------------------------

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

describe('Turin: refusals', () => {
  const fields = [
    ['fmc', 'fmcSPL'],
    ['bootloader', 'blSPL'],
    ['tee', 'teeSPL'],
    ['snp', 'snpSPL'],
    ['microcode', 'ucodeSPL'],
  ] as const;
  for (const [field, spl] of fields) {
    it(`refuses a REPORTED_TCB whose ${field} differs from the VCEK's ${spl} (report re-signed)`, async () => {
      const tcb = { [field]: TCB[field] + 1 };
      await assert.rejects(
        verifyT(report({ reportedTcb: turinTcb(tcb) })),
        code('ATTESTATION_CHAIN', 'VCEK TCB', 'REPORTED_TCB', `${spl} ${TCB[field]} ≠ ${TCB[field] + 1}`),
      );
      // and the other way round: a VCEK issued for the other value, the report as it was
      await assert.rejects(
        verifyT(h.report, {}, [vcekWith({ tcb }), h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'REPORTED_TCB', `${spl} ${TCB[field] + 1} ≠ ${TCB[field]}`),
      );
    });
  }

  it('refuses a report from another chip (hwID ≠ CHIP_ID[0..8]), and a VCEK for another chip', async () => {
    const other = Buffer.concat([Buffer.from('5a17c0ffee0b7a12', 'hex'), Buffer.alloc(56)]);
    await assert.rejects(
      verifyT(report({ chipId: other })),
      code('ATTESTATION_CHAIN', 'VCEK hwID', 'chip 5a17c0ffee0b7a11', 'chip 5a17c0ffee0b7a12'),
    );
    await assert.rejects(
      verifyT(h.report, {}, [vcekWith({ hwId: Buffer.from('0000000000000001', 'hex') }), h.ask, h.ark]),
      code('ATTESTATION_CHAIN', 'VCEK hwID'),
    );
    await assert.rejects(
      verifyT(h.report, {}, [vcekWith({ hwId: undefined }), h.ask, h.ark]),
      code('ATTESTATION_CHAIN', 'no hwID'),
    );
  });

  it('refuses a report signed by another key, a report changed after signing, and R/S written big-endian', async () => {
    await assert.rejects(
      verifyT(report({}, h.otherEcKey.privateKey)),
      code('ATTESTATION_SIGNATURE', 'does not verify with the VCEK'),
    );
    const changed = Buffer.from(h.report);
    changed[0x090] = changed[0x090]! ^ 1; // MEASUREMENT
    await assert.rejects(verifyT(changed), code('ATTESTATION_SIGNATURE'));
    await assert.rejects(verifyT(signReport(reportBody(), h.vcekKey.privateKey, true)), code('ATTESTATION_SIGNATURE'));
    // the other key's own VCEK (right chip, right TCB, signed by the ASK) makes it verify: the key is what failed
    const r = await verifyT(report({}, h.otherEcKey.privateKey), {}, [
      buildVcek(h.otherEcKey.publicKey, h.askKey.privateKey),
      h.ask,
      h.ark,
    ]);
    assert.equal(r.type, 'snp');
  });

  it('refuses a VCEK that is not an EC P-384 key', async () => {
    const p256 = (await keyPair('ec', { namedCurve: 'prime256v1' })) as KeyPair;
    await assert.rejects(
      verifyT(h.report, {}, [buildVcek(p256.publicKey, h.askKey.privateKey), h.ask, h.ark]),
      code('ATTESTATION_CHAIN', 'not an EC P-384 key'),
    );
  });

  describe('Milan-layout interpretations', () => {
    it('refuses a report claiming Turin CPUID with a Milan-style VCEK (productName Milan-B0, no fmcSPL, 64-byte hwID)', async () => {
      const milanStyle = vcekWith({
        productName: 'Milan-B0',
        omitFmc: true,
        hwId: CHIP_ID,
        tcb: { bootloader: 2, tee: 3, snp: 4, microcode: 5 },
      });
      await assert.rejects(
        verifyT(h.report, {}, [milanStyle, h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'is for Milan-B0', 'from a Turin'),
      );
      // also for a report whose REPORTED_TCB is written in the Milan layout for it
      await assert.rejects(
        verifyT(report({ reportedTcb: milanTcb() }), {}, [milanStyle, h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'is for Milan-B0'),
      );
    });

    it('refuses a Turin VCEK whose SPLs are the Milan reading of the report TCB bytes', async () => {
      // Turin [1,2,3,4,0,0,0,5] read as Milan: bl=1 tee=2 snp=0 ucode=5
      const milanReading = vcekWith({ tcb: { fmc: 0, bootloader: 1, tee: 2, snp: 0, microcode: 5 } });
      await assert.rejects(
        verifyT(h.report, {}, [milanReading, h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'REPORTED_TCB', 'fmcSPL 0 ≠ 1', 'blSPL 1 ≠ 2', 'teeSPL 2 ≠ 3', 'snpSPL 0 ≠ 4'),
      );
    });

    it('refuses a Turin report whose REPORTED_TCB is written in the Milan layout', async () => {
      // [BL, TEE, 0, 0, 0, 0, SNP, UCODE] read as Turin: fmc=2 bl=3 tee=0 snp=0
      await assert.rejects(
        verifyT(report({ reportedTcb: milanTcb() })),
        code('ATTESTATION_CHAIN', 'REPORTED_TCB', 'fmcSPL 1 ≠ 2', 'blSPL 2 ≠ 3', 'teeSPL 3 ≠ 0', 'snpSPL 4 ≠ 0'),
      );
      await assert.rejects(
        verifyT(report({ version: 2, reportedTcb: milanTcb() })),
        code('ATTESTATION_CHAIN', 'REPORTED_TCB'),
      );
    });

    it('refuses a Turin VCEK without fmcSPL, and one with a 64-byte (Milan-size) hwID', async () => {
      await assert.rejects(
        verifyT(h.report, {}, [vcekWith({ omitFmc: true }), h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'no fmcSPL'),
      );
      await assert.rejects(
        verifyT(h.report, {}, [vcekWith({ hwId: CHIP_ID }), h.ask, h.ark]),
        code('ATTESTATION_CHAIN', 'hwID is 64 bytes; expected 8'),
      );
    });

    it('refuses the Turin chain for a report claiming Milan CPUID (family 0x19): it needs SEV-Milan under the real ARK-Milan', async () => {
      await assert.rejects(
        verifyT(report({ cpuid: [0x19, 0x01, 0x01] })),
        code('ATTESTATION_CHAIN', "the chain has 'SEV-Turin'", "needs 'SEV-Milan'"),
      );
      // Genoa as well
      await assert.rejects(
        verifyT(report({ cpuid: [0x19, 0x11, 0x01] })),
        code('ATTESTATION_CHAIN', "needs 'SEV-Genoa'"),
      );
    });

    it('refuses a version 2 report whose VCEK is named Milan when the chain is Turin', async () => {
      const milanStyle = vcekWith({ productName: 'Milan-B0', omitFmc: true, hwId: CHIP_ID });
      await assert.rejects(
        verifyT(report({ version: 2 }), {}, [milanStyle, h.ask, h.ark]),
        code('ATTESTATION_CHAIN', "needs 'SEV-Milan'"),
      );
    });
  });

  describe('an ARK-Turin with the same subject and another key', () => {
    it('the production verifier (pinned AMD_ARKS) refuses the whole synthetic chain', async () => {
      await assert.rejects(
        verifySnpReport(h.report, { now: NOW, certs: [h.vcek, h.ask, h.ark] }),
        code('ATTESTATION_CHAIN', 'is not the AMD root key ARK-Turin', 'key SHA-256'),
      );
      await assert.rejects(
        verifySnpReport(h.report, { now: NOW, certs: [h.vcek, h.ask] }),
        code('ATTESTATION_CHAIN', "'SEV-Turin' is not signed by 'ARK-Turin'"),
      );
      await assert.rejects(
        verifySnpReport(h.report, {
          now: NOW,
          auxblob: buildCertTable([
            { guid: CERT_TABLE_GUIDS.vcek, data: h.vcek },
            { guid: CERT_TABLE_GUIDS.ask, data: h.ask },
          ]),
        }),
        code('ATTESTATION_CHAIN'),
      );
      // the real ASK-Turin with the synthetic VCEK: the VCEK is not signed by it
      await assert.rejects(
        verifySnpReport(h.report, { now: NOW, certs: [h.vcek, vector('snp/virtee-sev/cert_chain_turin')] }),
        code('ATTESTATION_CHAIN', "'SEV-VCEK' is not signed by 'SEV-Turin'"),
      );
    });

    it('with the synthetic root pinned, a foreign ARK-Turin (same subject, another key) and the ASK it signed are refused', async () => {
      const foreignArk = buildArk(h.foreignKey);
      assert.equal(new X509Certificate(foreignArk).subject, new X509Certificate(h.ark).subject);
      const foreignAsk = buildAsk(h.askKey.publicKey, h.foreignKey);
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, foreignAsk, foreignArk]),
        code('ATTESTATION_CHAIN', 'is not the synthetic ARK-Turin', 'key SHA-256'),
      );
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, h.ask, foreignArk]),
        code('ATTESTATION_CHAIN', 'is not the synthetic ARK-Turin'),
      );
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, foreignAsk]),
        code('ATTESTATION_CHAIN', "'SEV-Turin' is not signed by 'ARK-Turin'"),
      );
      // and the real AMD ARK-Turin is foreign to the synthetic pin just the same
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, h.ask, vector('snp/virtee-sev/ark_turin.pem')]),
        code('ATTESTATION_CHAIN', 'is not the synthetic ARK-Turin'),
      );
    });

    /** The ASK's key, name and issuer, with other extensions. */
    const askWith = (extensions: ReturnType<typeof ext>[]) =>
      buildCert({
        serial: ASK_SERIAL,
        subject: 'SEV-Turin',
        issuer: 'ARK-Turin',
        from: ARK_FROM,
        to: ARK_TO,
        publicKey: h.askKey.publicKey,
        signer: h.arkKey.privateKey,
        extensions,
      });

    it('refuses an ASK that is not a CA (no basicConstraints)', async () => {
      const notCa = askWith([ext('2.5.29.15', Buffer.from('03020204', 'hex'), true)]);
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, notCa, h.ark]),
        code('ATTESTATION_CHAIN', "'SEV-Turin' is not a CA"),
      );
    });

    it('refuses an ASK whose key usage does not allow signing certificates (not a CA)', async () => {
      const signOnly = askWith([
        ext(
          '2.5.29.19',
          Buffer.from(new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 }).toSchema().toBER(false)),
          true,
        ),
        ext('2.5.29.15', Buffer.from('03020780', 'hex'), true), // digitalSignature only
      ]);
      await assert.rejects(
        verifyT(h.report, {}, [h.vcek, signOnly, h.ark]),
        code('ATTESTATION_CHAIN', "'SEV-Turin' is not a CA"),
      );
    });

    it('refuses a VCEK signed by the ARK directly (no ASK) and one the ASK did not sign', async () => {
      const byArk = buildVcek(h.vcekKey.publicKey, h.arkKey.privateKey);
      await assert.rejects(
        verifyT(h.report, {}, [byArk, h.ask, h.ark]),
        code('ATTESTATION_CHAIN', "'SEV-VCEK' is not signed by 'SEV-Turin'"),
      );
      await assert.rejects(verifyT(h.report, {}, [h.vcek, h.ark]), code('ATTESTATION_COLLATERAL', "no 'SEV-Turin'"));
    });
  });

  it('refuses outside the VCEK validity window', async () => {
    await assert.rejects(
      verifySnpReportAgainst(
        h.report,
        { now: new Date(VCEK_FROM.getTime() - 1000), certs: [h.vcek, h.ask, h.ark] },
        h.roots,
      ),
      code('ATTESTATION_EXPIRED', "'SEV-VCEK'", 'not valid before'),
    );
    await assert.rejects(
      verifySnpReportAgainst(
        h.report,
        { now: new Date(VCEK_TO.getTime() + 1000), certs: [h.vcek, h.ask, h.ark] },
        h.roots,
      ),
      code('ATTESTATION_EXPIRED', "'SEV-VCEK'", 'expired'),
    );
  });
});

describe('Turin: revocation (ARK-signed CRL from the collateral source)', () => {
  const withCrl = (crl: Buffer, certs?: Buffer[]) => verifyT(h.report, { collateral: async () => ({ crl }) }, certs);

  it('openssl agrees: the CRL verifies with the ARK, and the ASK it lists is revoked', () => {
    const crl = file('crl.pem', pem(buildCrl({ revoked: [ASK_SERIAL], signer: h.arkKey.privateKey }), 'X509 CRL'));
    const ark = file('ark.pem', pem(h.ark));
    const ask = file('ask.pem', pem(h.ask));
    const text = opensslStatus('crl', '-in', crl, '-CAfile', ark, '-noout', '-text');
    assert.match(text.out, /verify OK/);
    assert.match(text.out, /Signature Algorithm: rsassaPss/);
    assert.match(text.out, /Serial Number: 030001/);
    const revoked = opensslStatus(
      'verify',
      '-crl_check',
      '-CAfile',
      ark,
      '-CRLfile',
      crl,
      '-attime',
      String(NOW.getTime() / 1000),
      ask,
    );
    assert.notEqual(revoked.status, 0);
    assert.match(revoked.out, /certificate revoked/);
    const clean = file('crl-clean.pem', pem(buildCrl({ revoked: [0x40000], signer: h.arkKey.privateKey }), 'X509 CRL'));
    assert.match(
      openssl('verify', '-crl_check', '-CAfile', ark, '-CRLfile', clean, '-attime', String(NOW.getTime() / 1000), ask),
      /: OK/,
    );
  });

  it('refuses the report when the CRL lists the ASK serial (ATTESTATION_REVOKED), as a function or as a provider', async () => {
    const crl = buildCrl({ revoked: [0x40000, ASK_SERIAL], signer: h.arkKey.privateKey });
    await assert.rejects(withCrl(crl), code('ATTESTATION_REVOKED', "'SEV-Turin'", 'serial 030001'));
    await assert.rejects(
      verifyT(h.report, { collateral: { amd: async () => ({ crl }) } }),
      code('ATTESTATION_REVOKED'),
    );
    // the CRL also arrives together with the certificates from the source
    await assert.rejects(
      verifySnpReportAgainst(
        h.report,
        { now: NOW, collateral: async () => ({ vcek: h.vcek, chain: pem(h.ask) + pem(h.ark), crl }) },
        h.roots,
      ),
      code('ATTESTATION_REVOKED'),
    );
  });

  it('accepts with a CRL that does not list the ASK, without the no-CRL warning', async () => {
    for (const revoked of [[], [ARK_SERIAL, 0x30002, 0x40000]]) {
      const r = await withCrl(buildCrl({ revoked, signer: h.arkKey.privateKey }));
      assert.ok(r.type === 'snp' && r.claims.product === 'Turin');
      assert.deepEqual(r.warnings, [SNP_WARNING]);
    }
  });

  it('does not look VCEK serials up in the ARK CRL (the ARK issued only the ASK; every VCEK has serial 0)', async () => {
    const r = await withCrl(buildCrl({ revoked: [0], signer: h.arkKey.privateKey }));
    assert.deepEqual(r.warnings, [SNP_WARNING]);
  });

  it('refuses a CRL past nextUpdate, before thisUpdate, or without nextUpdate (ATTESTATION_EXPIRED)', async () => {
    const signer = h.arkKey.privateKey;
    await assert.rejects(
      withCrl(
        buildCrl({
          signer,
          thisUpdate: new Date('2025-04-01T00:00:00Z'),
          nextUpdate: new Date('2025-05-31T23:59:59Z'),
        }),
      ),
      code('ATTESTATION_EXPIRED', 'AMD CRL', 'CRL expired at 2025-05-31T23:59:59.000Z'),
    );
    await assert.rejects(
      withCrl(
        buildCrl({
          signer,
          thisUpdate: new Date('2025-06-01T00:00:01Z'),
          nextUpdate: new Date('2025-07-01T00:00:00Z'),
        }),
      ),
      code('ATTESTATION_EXPIRED', 'CRL is not valid before'),
    );
    await assert.rejects(
      withCrl(buildCrl({ signer, nextUpdate: null })),
      code('ATTESTATION_EXPIRED', '(no nextUpdate)'),
    );
    // an expired CRL that lists the ASK: the CRL itself is refused first
    await assert.rejects(
      withCrl(buildCrl({ signer, revoked: [ASK_SERIAL], nextUpdate: new Date('2025-05-02T00:00:00Z') })),
      code('ATTESTATION_EXPIRED'),
    );
  });

  it('refuses a CRL signed by another key: a foreign ARK-Turin key, the ASK key; and a CRL whose signature was altered', async () => {
    await assert.rejects(
      withCrl(buildCrl({ signer: h.foreignKey.privateKey })),
      code('ATTESTATION_SIGNATURE', 'AMD CRL', "the CRL is not signed by 'ARK-Turin'"),
    );
    await assert.rejects(
      withCrl(buildCrl({ signer: h.askKey.privateKey, issuer: 'SEV-Turin' })),
      code('ATTESTATION_SIGNATURE', 'CRL is not signed'),
    );
    const crl = buildCrl({ signer: h.arkKey.privateKey });
    const altered = Buffer.from(crl);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
    await assert.rejects(withCrl(altered), code('ATTESTATION_SIGNATURE', 'CRL is not signed'));
    // the same CRL, unaltered, is accepted
    assert.equal((await withCrl(crl)).type, 'snp');
  });
});

describe('Turin: revocation edge cases (serials compared as DER bytes)', () => {
  // X509Certificate.serialNumber is OpenSSL's BN_bn2hex of the serial: "0" for zero (one digit) and "-01" for a
  // negative serial, while parseCrl takes the CRL entry's raw INTEGER content bytes ("00", "FF"). normaliseSerial
  // strips only pairs of zeros and only if something follows, so "0" ≠ "00" and "-01" ≠ "FF": a certificate with
  // serial 0 (or a negative serial) is never found on its issuer's CRL. AMD's published ASK/ASVK serials
  // (0x10001, 0x30001, …) are not affected; the same code checks Intel PCK and intermediate serials.

  it('openssl finds an ASK with serial 0 revoked by the same CRL (the CRL is right)', () => {
    const ask0 = file('ask0.pem', pem(buildAsk(h.askKey.publicKey, h.arkKey, 0)));
    const crl = file('crl0.pem', pem(buildCrl({ revoked: [0], signer: h.arkKey.privateKey }), 'X509 CRL'));
    const r = opensslStatus(
      'verify',
      '-crl_check',
      '-CAfile',
      file('ark.pem', pem(h.ark)),
      '-CRLfile',
      crl,
      '-attime',
      String(NOW.getTime() / 1000),
      ask0,
    );
    assert.notEqual(r.status, 0);
    assert.match(r.out, /certificate revoked/);
  });

  it('refuses a report whose ASK has serial 0 when the ARK CRL lists serial 0', async () => {
    const ask0 = buildAsk(h.askKey.publicKey, h.arkKey, 0);
    assert.equal(new X509Certificate(ask0).serialNumber, '0');
    const crl = buildCrl({ revoked: [0], signer: h.arkKey.privateKey });
    await assert.rejects(
      verifyT(h.report, { collateral: async () => ({ crl }) }, [h.vcek, ask0, h.ark]),
      code('ATTESTATION_REVOKED'),
    );
  });

  it('refuses a report whose ASK has a negative serial (-1) when the ARK CRL lists it', async () => {
    const askNeg = buildAsk(h.askKey.publicKey, h.arkKey, -1);
    assert.equal(new X509Certificate(askNeg).serialNumber, '-01');
    const crl = buildCrl({ revoked: [-1], signer: h.arkKey.privateKey });
    await assert.rejects(
      verifyT(h.report, { collateral: async () => ({ crl }) }, [h.vcek, askNeg, h.ark]),
      code('ATTESTATION_REVOKED'),
    );
  });

  it('serials with a leading zero byte (high bit set) do match: 0x8001 is revoked', async () => {
    const ask = buildAsk(h.askKey.publicKey, h.arkKey, 0x8001);
    const crl = buildCrl({ revoked: [0x8001], signer: h.arkKey.privateKey });
    await assert.rejects(
      verifyT(h.report, { collateral: async () => ({ crl }) }, [h.vcek, ask, h.ark]),
      code('ATTESTATION_REVOKED', 'serial 008001'),
    );
  });
});
