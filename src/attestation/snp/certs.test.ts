import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import type { AttestationError } from '../errors.js';
import { verifyChain } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import {
  CERT_TABLE_GUIDS,
  amdCert,
  amdCerts,
  buildCertTable,
  certsFromTable,
  parseCertTable,
  vekExtensions,
} from './certs.js';
import { pemToDer, vector } from './fixtures.js';

const ext = (path: string) => vekExtensions(amdCert(new X509Certificate(vector(path))), 'test');

describe('VCEK / VLEK extensions', () => {
  it('reads the go-sev-guest VCEK', () => {
    const e = ext('snp/go-sev-guest/vcek.testcer');
    assert.equal(e.structVersion, 0);
    assert.equal(e.productName, 'Milan-B0');
    assert.equal(e.product, 'Milan');
    assert.deepEqual([e.bootloader, e.tee, e.snp, e.microcode, e.fmc], [2, 0, 5, 68, undefined]);
    assert.equal(
      e.hwId?.toString('hex'),
      '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d',
    );
    assert.equal(e.cspId, undefined);
  });

  it('reads the VLEK: cspID, no hwID', () => {
    const e = ext('snp/trustee/test-vlek.der');
    assert.equal(e.productName, 'Milan');
    assert.deepEqual([e.bootloader, e.tee, e.snp, e.microcode], [4, 0, 24, 217]);
    assert.equal(e.cspId, 'CN=cc-us-east-2.amazonaws.com');
    assert.equal(e.hwId, undefined);
  });

  it('reads the Turin VCEK: 8-byte hwID and fmcSPL; its chain verifies to ARK-Turin', () => {
    const e = ext('snp/virtee-sev/vcek_turin.der');
    assert.equal(e.structVersion, 1);
    assert.equal(e.product, 'Turin');
    assert.equal(e.fmc, 0);
    assert.deepEqual([e.bootloader, e.tee, e.snp, e.microcode], [0, 0, 0, 9]);
    assert.equal(e.hwId?.toString('hex'), '1e550a8ee5cf9f4d');
    const chain = [
      new X509Certificate(vector('snp/virtee-sev/vcek_turin.der')),
      ...pemToDer(vector('snp/virtee-sev/cert_chain_turin')).map((d) => new X509Certificate(d)),
    ];
    const entries = verifyChain(chain, AMD_ARKS.Turin, new Date('2025-01-01'), 'test');
    assert.deepEqual(
      entries.map((c) => /CN=([^,]+)$/.exec(c.subject)?.[1]),
      ['SEV-VCEK', 'SEV-Turin', 'ARK-Turin'],
    );
  });

  it("parses both of trustee's odd encodings: raw hwID with a two-byte ucodeSPL, and an OCTET STRING hwID", () => {
    const legacy = ext('snp/trustee/test-vcek-invalid-legacy.der');
    assert.equal(legacy.microcode, 169); // INTEGER 00 A9: correct DER for 169
    assert.equal(legacy.snp, 10);
    assert.equal(legacy.hwId?.toString('hex'), Buffer.from(Array.from({ length: 64 }, (_, i) => i)).toString('hex'));
    const wrapped = ext('snp/trustee/test-vcek-invalid-new.der');
    assert.equal(wrapped.microcode, 30);
    assert.equal(wrapped.hwId?.toString('hex'), Buffer.from(Array.from({ length: 64 }, (_, i) => i)).toString('hex'));
    // Both files carry signatures that do not verify: only the parser accepts them.
    const ask = new X509Certificate(pemToDer(vector('snp/trustee/milan_ask_ark_asvk.pem'))[0]!);
    for (const f of ['snp/trustee/test-vcek-invalid-legacy.der', 'snp/trustee/test-vcek-invalid-new.der']) {
      assert.throws(
        () => verifyChain([new X509Certificate(vector(f)), ask], AMD_ARKS.Milan, new Date('2024-01-01'), 'test'),
        (e: AttestationError) => e.code === 'ATTESTATION_CHAIN',
      );
    }
  });

  it('classifies AMD certificates by CN', () => {
    const roles = amdCerts(
      [
        vector('snp/trustee/milan_ask_ark_asvk.pem'),
        vector('snp/trustee/test-vcek.der'),
        vector('snp/trustee/test-vlek.der'),
      ],
      'test',
    ).map((c) => `${c.role}:${c.product ?? ''}`);
    assert.deepEqual(roles, ['ask:Milan', 'ark:Milan', 'asvk:Milan', 'vcek:', 'vlek:']);
  });
});

describe('GHCB certificate table', () => {
  const vcek = vector('snp/go-sev-guest/vcek.testcer');
  const [ask, ark] = pemToDer(vector('snp/go-sev-guest/milan.testcer')) as [Buffer, Buffer];

  it('round-trips entries and yields the certificates of known GUIDs', () => {
    const table = buildCertTable([
      { guid: CERT_TABLE_GUIDS.vcek, data: vcek },
      { guid: CERT_TABLE_GUIDS.ask, data: ask },
      { guid: CERT_TABLE_GUIDS.ark, data: ark },
      { guid: '00000000-0000-0000-0000-000000000001', data: Buffer.from('other') },
    ]);
    const entries = parseCertTable(table);
    assert.deepEqual(
      entries.map((e) => e.kind),
      ['vcek', 'ask', 'ark', undefined],
    );
    assert.ok(entries[0]!.data.equals(vcek));
    assert.deepEqual(
      certsFromTable(table).map((c) => c.role),
      ['vcek', 'ask', 'ark'],
    );
    // the GUID bytes are stored in RFC 4122 order
    assert.equal(table.subarray(0, 4).toString('hex'), '63da758d');
  });

  const bad = (f: (t: Buffer) => void, what: string) => {
    const t = buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, data: vcek }]);
    f(t);
    assert.throws(
      () => parseCertTable(t),
      (e: AttestationError) => e.code === 'ATTESTATION_MALFORMED' && e.message.includes(what),
      what,
    );
  };

  it('checks bounds, the terminator and duplicates', () => {
    bad((t) => t.writeUInt32LE(t.length, 16), 'outside the data area');
    bad((t) => t.writeUInt32LE(0xffffffff, 20), 'outside the data area');
    bad((t) => t.writeUInt32LE(0, 16), 'outside the data area'); // overlapping the table itself
    bad((t) => t.writeUInt32LE(0, 20), 'is empty');
    bad((t) => t.fill(0x11, 24, 48), 'no terminating');
    assert.throws(
      () => parseCertTable(Buffer.alloc(10)),
      (e: AttestationError) => e.code === 'ATTESTATION_MALFORMED',
    );
    const dup = buildCertTable([
      { guid: CERT_TABLE_GUIDS.vcek, data: vcek },
      { guid: CERT_TABLE_GUIDS.vcek, data: vcek },
    ]);
    assert.throws(
      () => parseCertTable(dup),
      (e: AttestationError) => e.message.includes('appears twice'),
    );
    const garbage = buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, data: Buffer.from('not a certificate') }]);
    assert.throws(
      () => certsFromTable(garbage),
      (e: AttestationError) => e.code === 'ATTESTATION_MALFORMED' && e.message.includes('VCEK entry'),
    );
    assert.deepEqual(parseCertTable(Buffer.alloc(24)), []);
  });
});
