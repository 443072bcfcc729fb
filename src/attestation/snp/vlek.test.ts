import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { pinRoot, spkiSha256, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import { CERT_TABLE_GUIDS, amdCert, buildCertTable, vekExtensions } from './certs.js';
import { vector } from './fixtures.js';
import type { SnpProduct } from './report.js';
import {
  AMD_ARC,
  ASK_SERIAL,
  CSP_ID,
  NOW,
  buildArk,
  buildAsk,
  buildVcek,
  buildVlek,
  code,
  keyPair,
  p384,
  reportBody,
  rsa4096,
  signReport,
  vlekExtensions,
  type KeyPair,
} from './synthetic.js';
import { SNP_NO_CRL_WARNING, SNP_WARNING, verifySnpReportAgainst } from './verify.js';

/**
 * The VLEK path on the synthetic Turin hierarchy (synthetic.ts): ARK-Turin → ASVK "SEV-VLEK-Turin" → "SEV-VLEK"
 * (EC P-384, cspID), next to ARK-Turin → ASK "SEV-Turin" → "SEV-VCEK". Each refusal below is made with
 * certificates whose signatures are all valid, so that it fails when the one check it names is removed:
 *  - the intermediate must be the one the report's SIGNING_KEY selects (ASK for a VCEK, ASVK for a VLEK);
 *  - the VCEK/VLEK key must be EC P-384;
 *  - a VLEK must carry cspID.
 */

const ASVK_SERIAL = 0x30002;

interface Hierarchy {
  ark: Buffer;
  ask: Buffer;
  asvk: Buffer;
  vcek: Buffer;
  vlek: Buffer;
  askKey: KeyPair;
  asvkKey: KeyPair;
  vcekKey: KeyPair;
  vlekKey: KeyPair;
  p256: KeyPair;
  roots: Record<SnpProduct, PinnedRoot>;
  vcekReport: Buffer;
  vlekReport: Buffer;
}
let h: Hierarchy;

before(async () => {
  const [arkKey, askKey, asvkKey, vcekKey, vlekKey, p256] = await Promise.all([
    rsa4096(),
    rsa4096(),
    rsa4096(),
    p384(),
    p384(),
    keyPair('ec', { namedCurve: 'prime256v1' }) as Promise<KeyPair>,
  ]);
  const ark = buildArk(arkKey);
  const arkCert = new X509Certificate(ark);
  const root = pinRoot('the synthetic ARK-Turin', arkCert.toString(), spkiSha256(arkCert.publicKey));
  h = {
    ark,
    ask: buildAsk(askKey.publicKey, arkKey, ASK_SERIAL, 'SEV-Turin'),
    asvk: buildAsk(asvkKey.publicKey, arkKey, ASVK_SERIAL, 'SEV-VLEK-Turin'),
    vcek: buildVcek(vcekKey.publicKey, askKey.privateKey),
    vlek: buildVlek(vlekKey.publicKey, asvkKey.privateKey),
    askKey,
    asvkKey,
    vcekKey,
    vlekKey,
    p256,
    roots: { Milan: AMD_ARKS.Milan, Genoa: AMD_ARKS.Genoa, Turin: root },
    vcekReport: signReport(reportBody(), vcekKey.privateKey),
    vlekReport: signReport(reportBody({ signingKey: 'vlek' }), vlekKey.privateKey),
  };
});

const verify = (report: Buffer, certs: Buffer[]) => verifySnpReportAgainst(report, { now: NOW, certs }, h.roots);

describe('VLEK: the synthetic hierarchy', () => {
  it('encodes the VLEK extensions as trustee test-vlek.der does (given its values), cspID included', () => {
    const real = pkijs.Certificate.fromBER(vector('snp/trustee/test-vlek.der'));
    const realExts = (real.extensions ?? [])
      .filter((e) => e.extnID.startsWith(AMD_ARC))
      .map((e) => Buffer.from(e.toSchema().toBER(false)).toString('hex'));
    const ours = vlekExtensions({ productName: 'Milan', tcb: { bootloader: 4, tee: 0, snp: 24, microcode: 217 } }).map(
      (e) => Buffer.from(e.toSchema().toBER(false)).toString('hex'),
    );
    assert.deepEqual(ours, realExts);
  });

  it('chains VLEK → ASVK → ARK and VCEK → ASK → ARK by signature, with the AMD names', () => {
    const [ark, ask, asvk, vcek, vlek] = [h.ark, h.ask, h.asvk, h.vcek, h.vlek].map(
      (d) => new X509Certificate(d),
    ) as X509Certificate[];
    assert.match(asvk!.subject, /CN=SEV-VLEK-Turin$/);
    assert.match(vlek!.subject, /CN=SEV-VLEK$/);
    assert.equal(vlek!.issuer, asvk!.subject);
    assert.ok(asvk!.verify(ark!.publicKey) && vlek!.verify(asvk!.publicKey) && vcek!.verify(ask!.publicKey));
    assert.equal(vlek!.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    const e = vekExtensions(amdCert(vlek!), 'test');
    assert.equal(e.cspId, CSP_ID);
    assert.equal(e.hwId, undefined);
  });
});

describe('VLEK: reports that verify', () => {
  it('a VLEK-signed Turin report verifies with VLEK, ASVK, ARK; claims carry signing_key vlek and csp_id', async () => {
    const r = await verify(h.vlekReport, [h.vlek, h.asvk, h.ark]);
    assert.ok(r.type === 'snp');
    if (r.type !== 'snp') return;
    assert.equal(r.claims.signing_key, 'vlek');
    assert.equal(r.claims.csp_id, CSP_ID);
    assert.equal(r.claims.product, 'Turin');
    assert.deepEqual(r.warnings, [SNP_WARNING, SNP_NO_CRL_WARNING]);
    assert.deepEqual(
      r.chain.map((c) => /CN=([^,]+)$/.exec(c.subject)?.[1]),
      ['SEV-VLEK', 'SEV-VLEK-Turin', 'ARK-Turin'],
    );
  });

  it('from a certificate table (VLEK GUID; the ASVK under the ASK GUID, as hosts provision it), and with the ASK present too', async () => {
    const auxblob = buildCertTable([
      { guid: CERT_TABLE_GUIDS.vlek, data: h.vlek },
      { guid: CERT_TABLE_GUIDS.ask, data: h.asvk },
      { guid: CERT_TABLE_GUIDS.ark, data: h.ark },
    ]);
    assert.equal((await verifySnpReportAgainst(h.vlekReport, { now: NOW, auxblob }, h.roots)).type, 'snp');
    // an ASK next to the ASVK does not get in the way of either path
    assert.equal((await verify(h.vlekReport, [h.vlek, h.ask, h.asvk, h.ark])).type, 'snp');
    assert.equal((await verify(h.vcekReport, [h.vcek, h.asvk, h.ask, h.ark])).type, 'snp');
  });
});

describe('VLEK: refusals that need their check', () => {
  // Rule (a): the intermediate must be the one SIGNING_KEY selects. Without the check, these chains verify
  // (every signature is valid) and the reports would be accepted.
  it('refuses a VLEK report whose VLEK chains through the ASK (SEV-Turin), not an ASVK', async () => {
    const vlekByAsk = buildVlek(h.vlekKey.publicKey, h.askKey.privateKey, { issuer: 'SEV-Turin' });
    assert.ok(new X509Certificate(vlekByAsk).verify(new X509Certificate(h.ask).publicKey));
    await assert.rejects(
      verify(h.vlekReport, [vlekByAsk, h.ask, h.ark]),
      code('ATTESTATION_CHAIN', "the chain has 'SEV-Turin'", "a Turin VLEK needs 'SEV-VLEK-Turin'"),
    );
  });

  it('refuses a VCEK report whose VCEK chains through the ASVK (SEV-VLEK-Turin), not an ASK', async () => {
    const vcekByAsvk = buildVcek(h.vcekKey.publicKey, h.asvkKey.privateKey, { issuer: 'SEV-VLEK-Turin' });
    assert.ok(new X509Certificate(vcekByAsvk).verify(new X509Certificate(h.asvk).publicKey));
    await assert.rejects(
      verify(h.vcekReport, [vcekByAsvk, h.asvk, h.ark]),
      code('ATTESTATION_CHAIN', "the chain has 'SEV-VLEK-Turin'", "a Turin VCEK needs 'SEV-Turin'"),
    );
  });

  // Rule (b): the VCEK/VLEK key must be EC P-384. A P-256 key with a valid certificate, and the report signed
  // by it: without the check the refusal would come later, as a signature failure.
  it('refuses a VLEK and a VCEK with an EC P-256 key (certificates valid, reports signed by that key)', async () => {
    const vlek256 = buildVlek(h.p256.publicKey, h.asvkKey.privateKey);
    const vcek256 = buildVcek(h.p256.publicKey, h.askKey.privateKey);
    await assert.rejects(
      verify(signReport(reportBody({ signingKey: 'vlek' }), h.p256.privateKey), [vlek256, h.asvk, h.ark]),
      code('ATTESTATION_CHAIN', 'VLEK certificate', 'the VLEK key is not an EC P-384 key'),
    );
    await assert.rejects(
      verify(signReport(reportBody(), h.p256.privateKey), [vcek256, h.ask, h.ark]),
      code('ATTESTATION_CHAIN', 'VCEK certificate', 'the VCEK key is not an EC P-384 key'),
    );
  });

  // Rule (c): a VLEK must say whom AMD issued it to.
  it('refuses a VLEK without cspID (otherwise valid, the report signed by its key)', async () => {
    const noCsp = buildVlek(h.vlekKey.publicKey, h.asvkKey.privateKey, { cspId: undefined });
    assert.equal(vekExtensions(amdCert(new X509Certificate(noCsp)), 'test').cspId, undefined);
    await assert.rejects(
      verify(h.vlekReport, [noCsp, h.asvk, h.ark]),
      code('ATTESTATION_CHAIN', 'the VLEK has no cspID extension'),
    );
  });
});
