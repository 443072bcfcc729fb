import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { ARK_SERIAL, ASK_SERIAL, NOW, buildAsk, buildCrl, code, pem } from './synthetic.js';
import { SNP_WARNING, verifySnpReportAgainst } from './verify.js';
import { file, h, openssl, opensslStatus, useTurinHierarchy, verifyT } from './turin-kit.js';

/** Turin revocation: the ARK-signed CRL from the collateral source (the hierarchy: turin-kit.ts). */
useTurinHierarchy();

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
