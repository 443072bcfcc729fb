import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { pinRoot, spkiSha256, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import { CERT_TABLE_GUIDS, buildCertTable } from './certs.js';
import { KDS_MAX_IN_FLIGHT, amdCollateralFromKds, type KdsFetch } from './collateral.js';
import type { SnpProduct } from './report.js';
import {
  ASK_SERIAL,
  HWID,
  NOW,
  buildArk,
  buildAsk,
  buildCrl,
  buildVcek,
  code,
  p384,
  pem,
  reportBody,
  rsa4096,
  signReport,
  type KeyPair,
} from './synthetic.js';
import { SNP_CRL_UNAVAILABLE_WARNING, SNP_NO_CRL_WARNING, SNP_WARNING, verifySnpReportAgainst } from './verify.js';

/**
 * Collateral and denial of service (verify.ts, top comment): forged reports must not turn into unbounded AMD KDS
 * traffic, and a KDS that refuses everything must not turn a report that carries its own valid chain into a
 * refusal. The KDS source runs with a counting fake fetch; the hierarchy is the synthetic Turin one.
 */

interface H {
  arkKey: KeyPair;
  vcekKey: KeyPair;
  otherKey: KeyPair;
  ark: Buffer;
  ask: Buffer;
  vcek: Buffer;
  crl: Buffer;
  roots: Record<SnpProduct, PinnedRoot>;
  report: Buffer;
}
let h: H;

before(async () => {
  const [arkKey, askKey, vcekKey, otherKey] = await Promise.all([rsa4096(), rsa4096(), p384(), p384()]);
  const ark = buildArk(arkKey);
  const arkCert = new X509Certificate(ark);
  h = {
    arkKey,
    vcekKey,
    otherKey,
    ark,
    ask: buildAsk(askKey.publicKey, arkKey, ASK_SERIAL),
    vcek: buildVcek(vcekKey.publicKey, askKey.privateKey),
    crl: buildCrl({ signer: arkKey.privateKey }),
    roots: {
      Milan: AMD_ARKS.Milan,
      Genoa: AMD_ARKS.Genoa,
      Turin: pinRoot('the synthetic ARK-Turin', arkCert.toString(), spkiSha256(arkCert.publicKey)),
    },
    report: signReport(reportBody(), vcekKey.privateKey),
  };
});

type Answer = { status: number; body?: Buffer | string };

/** A fake KDS: counts every request and the most in flight at once; `answer` decides (and may wait). */
function fakeKds(answer: (url: string) => Answer | Promise<Answer>) {
  const stats = { urls: [] as string[], inFlight: 0, maxInFlight: 0 };
  const fetch: KdsFetch = async (url) => {
    stats.urls.push(url);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      const a = await answer(url);
      const body = Buffer.from(a.body ?? '');
      return {
        status: a.status,
        body: (async function* () {
          yield body;
        })(),
      };
    } finally {
      stats.inFlight--;
    }
  };
  const vcekUrls = () => stats.urls.filter((u) => !u.endsWith('/cert_chain') && !u.endsWith('/crl'));
  return { stats, fetch, vcekUrls };
}

/** cert_chain and crl from the synthetic hierarchy; VCEK URLs as `vcek` says. */
const kdsAnswers =
  (vcek: (url: string) => Answer | Promise<Answer>) =>
  (url: string): Answer | Promise<Answer> => {
    if (url.endsWith('/cert_chain')) return { status: 200, body: pem(h.ask) + pem(h.ark) };
    if (url.endsWith('/crl')) return { status: 200, body: h.crl };
    return vcek(url);
  };

/** A forged Turin report: a random chip ID (the 8-byte Turin hwID), signed by a key no VCEK certifies. */
const forged = (chip = randomBytes(8)) =>
  signReport(reportBody({ chipId: Buffer.concat([chip, Buffer.alloc(56)]) }), h.otherKey.privateKey);
const verify = (report: Buffer, extra: Record<string, unknown>) =>
  verifySnpReportAgainst(report, { now: NOW, ...extra }, h.roots);
const fullAuxblob = () =>
  buildCertTable([
    { guid: CERT_TABLE_GUIDS.vcek, data: h.vcek },
    { guid: CERT_TABLE_GUIDS.ask, data: h.ask },
    { guid: CERT_TABLE_GUIDS.ark, data: h.ark },
  ]);

describe('KDS: forged reports without certificates', () => {
  it(`${KDS_MAX_IN_FLIGHT * 10} forged reports with distinct chip IDs make at most ${KDS_MAX_IN_FLIGHT} VCEK requests at once; the rest fail at once as busy`, async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const kds = fakeKds(
      kdsAnswers(async () => {
        await gate;
        return { status: 404 };
      }),
    );
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    const n = KDS_MAX_IN_FLIGHT * 10;
    const chips = Array.from({ length: n }, () => randomBytes(8));
    const all = Promise.allSettled(chips.map((chip) => verify(forged(chip), { collateral: source })));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(kds.vcekUrls().length, KDS_MAX_IN_FLIGHT, 'VCEK requests sent while the first ones are unanswered');
    release();
    const results = await all;
    assert.ok(results.every((r) => r.status === 'rejected'));
    const errors = results.map((r) => (r as PromiseRejectedResult).reason as AttestationError);
    assert.ok(errors.every((e) => e instanceof AttestationError && e.code === 'ATTESTATION_COLLATERAL'));
    assert.equal(errors.filter((e) => e.message.includes('busy')).length, n - KDS_MAX_IN_FLIGHT);
    assert.equal(errors.filter((e) => e.message.includes('HTTP 404')).length, KDS_MAX_IN_FLIGHT);
    assert.equal(kds.vcekUrls().length, KDS_MAX_IN_FLIGHT);
    assert.ok(
      kds.stats.maxInFlight <= KDS_MAX_IN_FLIGHT + 1,
      `at most ${KDS_MAX_IN_FLIGHT} VCEK requests and the one cert_chain were in flight (${kds.stats.maxInFlight})`,
    );
    // concurrent requests for the one cert_chain URL shared one fetch; no CRL was asked for (nothing verified)
    assert.equal(kds.stats.urls.filter((u) => u.endsWith('/cert_chain')).length, 1);
    assert.equal(kds.stats.urls.filter((u) => u.endsWith('/crl')).length, 0);

    // the chip IDs that were fetched are remembered as failures: repeating them sends nothing
    const fetched = new Set(kds.vcekUrls());
    const before = kds.stats.urls.length;
    const repeats = chips.filter((c) => [...fetched].some((u) => u.includes(`/${c.toString('hex')}?`)));
    assert.equal(repeats.length, KDS_MAX_IN_FLIGHT);
    for (const chip of repeats)
      await assert.rejects(verify(forged(chip), { collateral: source }), code('ATTESTATION_COLLATERAL', 'HTTP 404'));
    assert.equal(kds.stats.urls.length, before);
  });

  it('a failure is retried after the negative-cache time, not before', async () => {
    const kds = fakeKds(kdsAnswers(() => ({ status: 404 })));
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch, negativeTtlMs: 50 });
    const report = forged();
    for (let i = 0; i < 3; i++)
      await assert.rejects(verify(report, { collateral: source }), code('ATTESTATION_COLLATERAL', 'HTTP 404'));
    assert.equal(kds.vcekUrls().length, 1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await assert.rejects(verify(report, { collateral: source }), code('ATTESTATION_COLLATERAL', 'HTTP 404'));
    assert.equal(kds.vcekUrls().length, 2);
  });
});

describe('KDS: forged reports with certificates', () => {
  it('no request at all when the evidence carries the VCEK for this chip and TCB, chained to the ARK, and the signature fails', async () => {
    const kds = fakeKds(kdsAnswers(() => ({ status: 200, body: h.vcek })));
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    const bad = forged(HWID); // the chip the VCEK is for, signed by another key
    await assert.rejects(
      verify(bad, { auxblob: fullAuxblob(), collateral: source }),
      code('ATTESTATION_SIGNATURE', 'does not verify with the VCEK'),
    );
    await assert.rejects(
      verify(bad, { certs: [h.vcek, h.ask, h.ark], collateral: source }),
      code('ATTESTATION_SIGNATURE'),
    );
    assert.deepEqual(kds.stats.urls, []);
  });

  it('only the per-product chain and CRL (no request by chip) when the evidence has the VCEK for this chip and TCB but no ASK', async () => {
    const kds = fakeKds(kdsAnswers(() => ({ status: 200, body: h.vcek })));
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    await assert.rejects(verify(forged(HWID), { certs: [h.vcek], collateral: source }), code('ATTESTATION_SIGNATURE'));
    assert.deepEqual(kds.vcekUrls(), []);
    // and the genuine report verifies that way, its CRL checked
    const r = await verify(h.report, { certs: [h.vcek], collateral: source });
    assert.deepEqual(r.warnings, [SNP_WARNING]);
    assert.deepEqual(kds.vcekUrls(), []);
  });

  it('residual: certificates for another chip do not spare the request by chip (bounded as without certificates)', async () => {
    const kds = fakeKds(kdsAnswers(() => ({ status: 404 })));
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    await assert.rejects(
      verify(forged(), { certs: [h.vcek, h.ask, h.ark], collateral: source }),
      code('ATTESTATION_CHAIN', 'VCEK hwID', 'could not supply other certificates', 'HTTP 404'),
    );
    assert.equal(kds.vcekUrls().length, 1);
  });
});

describe('KDS: valid reports while KDS refuses', () => {
  it('a report with a full auxblob verifies while KDS answers 429 to everything, with the no-CRL warning; KDS is then left alone', async () => {
    const kds = fakeKds(() => ({ status: 429 }));
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    for (let i = 0; i < 3; i++) {
      const r = await verify(h.report, { auxblob: fullAuxblob(), collateral: source });
      assert.ok(r.type === 'snp' && r.claims.product === 'Turin');
      assert.equal(r.warnings[0], SNP_WARNING);
      assert.equal(r.warnings[1], SNP_NO_CRL_WARNING);
      assert.ok(
        r.warnings[2]?.startsWith(SNP_CRL_UNAVAILABLE_WARNING) && r.warnings[2].includes('HTTP 429'),
        r.warnings[2],
      );
    }
    // one request (the first URL the CRL request needed); after the 429 nothing more is sent
    assert.equal(kds.stats.urls.length, 1);
    assert.deepEqual(kds.vcekUrls(), []);
    // a report without certificates cannot be verified then, and says why
    await assert.rejects(verify(h.report, { collateral: source }), code('ATTESTATION_COLLATERAL', 'HTTP 429'));
    assert.equal(kds.stats.urls.length, 1);
  });

  it('a report with a full auxblob checks the KDS CRL and never asks for its VCEK; the same while KDS is busy with forged reports', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const kds = fakeKds(
      kdsAnswers(async () => {
        await gate;
        return { status: 404 };
      }),
    );
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    const flood = Promise.allSettled(
      Array.from({ length: KDS_MAX_IN_FLIGHT * 2 }, () => verify(forged(), { collateral: source })),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(kds.vcekUrls().length, KDS_MAX_IN_FLIGHT);
    const r = await verify(h.report, { auxblob: fullAuxblob(), collateral: source });
    assert.deepEqual(r.warnings, [SNP_WARNING], 'the CRL was fetched and checked');
    assert.equal(kds.vcekUrls().length, KDS_MAX_IN_FLIGHT);
    release();
    await flood;
  });

  it('a collateral function that throws does not refuse a report that verifies with its own certificates', async () => {
    const r = await verify(h.report, {
      certs: [h.vcek, h.ask, h.ark],
      collateral: async () => {
        throw new Error('KDS down');
      },
    });
    assert.deepEqual(r.warnings.slice(0, 2), [SNP_WARNING, SNP_NO_CRL_WARNING]);
    assert.match(r.warnings[2] ?? '', /KDS down/);
  });
});

describe('KDS: the CRL survives an attacker who gets the CAS rate-limited', () => {
  /** KDS as it behaves: it throttles the client after a few requests, whatever the URL. */
  const throttling = (allowed: number) => {
    let served = 0;
    return fakeKds((url) => (++served > allowed ? { status: 429 } : kdsAnswers(() => ({ status: 404 }))(url)));
  };

  it('forged reports that get KDS to answer 429 do not cost a genuine report its CRL, once the CRL was fetched (warm)', async () => {
    const kds = throttling(9);
    const source = amdCollateralFromKds({ baseUrl: 'https://kds.test', fetch: kds.fetch });
    await source.warm!();
    for (let i = 0; i < 6; i++) await verify(forged(), { collateral: source }).catch(() => undefined);
    assert.ok(kds.stats.urls.length > 9, 'the forged reports made KDS throttle');
    const r = await verify(h.report, { auxblob: fullAuxblob(), collateral: source });
    assert.ok(!r.warnings.includes(SNP_NO_CRL_WARNING), r.warnings.join(' | '));
  });

  it('a per-product answer falls back to the last good one when its refresh fails; a VCEK answer does not', async () => {
    const kds = throttling(9);
    const source = amdCollateralFromKds({
      baseUrl: 'https://kds.test',
      fetch: kds.fetch,
      cacheTtlMs: 0,
      negativeTtlMs: 0,
    });
    await source.warm!();
    const r = await verify(h.report, { auxblob: fullAuxblob(), collateral: source });
    assert.ok(kds.stats.urls.length > 9, 'the refresh was asked for, and refused');
    assert.ok(!r.warnings.includes(SNP_NO_CRL_WARNING), r.warnings.join(' | '));
    await assert.rejects(verify(forged(), { collateral: source }), (e: unknown) => e instanceof AttestationError);
  });
});
