import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { CERT_TABLE_GUIDS, buildCertTable } from './certs.js';
import { vector } from './fixtures.js';
import {
  ARK_FROM,
  ARK_TO,
  ASK_SERIAL,
  CHIP_ID,
  NOW,
  TCB,
  VCEK_FROM,
  VCEK_TO,
  buildArk,
  buildAsk,
  buildCert,
  buildVcek,
  code,
  ext,
  keyPair,
  milanTcb,
  reportBody,
  signReport,
  turinTcb,
  type KeyPair,
} from './synthetic.js';
import { verifySnpReport, verifySnpReportAgainst } from './verify.js';
import { h, report, useTurinHierarchy, vcekWith, verifyT } from './turin-kit.js';

/** Turin SNP reports the verifier refuses (the hierarchy: turin-kit.ts). */
useTurinHierarchy();

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
