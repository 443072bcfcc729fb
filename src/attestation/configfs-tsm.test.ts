import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryTsm } from '../e2e/tsm-standin.js';
import { tsmProvider, tsmReport } from './configfs-tsm.js';
import { AttestationError } from './errors.js';

const QUOTE = Buffer.from('recorded quote bytes');
const inblob = Buffer.alloc(64, 0xab);

function collectFailure(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AttestationError, String(err));
    assert.equal(err.code, 'ATTESTATION_COLLECT');
    assert.equal(err.check, 'configfs-tsm');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('configfs-tsm reports (against the in-memory stand-in of the kernel ABI)', () => {
  it('writes exactly the 64 bytes to inblob of a fresh report object, reads provider and outblob, and removes the object', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: QUOTE });
    let seen: Buffer | undefined;
    tsm.hooks.beforeOutblobRead = (dir) => {
      seen = tsm.objects.get(dir.split('/').pop()!)!.inblob;
    };
    const report = await tsmReport(inblob, { fs: tsm.fs, base: '/tsm' });
    assert.equal(report.provider, 'tdx_guest');
    assert.deepEqual(report.outblob, QUOTE);
    assert.equal(report.auxblob, undefined, 'no auxblob for TDX');
    assert.deepEqual(seen, inblob);
    assert.equal(tsm.objects.size, 0, 'the report object is removed');
    assert.match(tsm.log[0]!, /^mkdir \/tsm\/report\/veil-\d+-[0-9a-f]{12}$/);
    assert.deepEqual(
      tsm.log.filter((l) => l.startsWith('write')).map((l) => l.split('/').pop()),
      ['inblob 64'],
    );
  });

  it('for sev_guest also writes privlevel and returns the certificate table from auxblob', async () => {
    const tsm = memoryTsm({
      provider: 'sev_guest',
      outblob: Buffer.alloc(1184, 1),
      auxblob: Buffer.from('cert table'),
    });
    const report = await tsmReport(inblob, { fs: tsm.fs, base: '/tsm', privlevel: 2 });
    assert.equal(report.provider, 'sev_guest');
    assert.equal(report.outblob.length, 1184);
    assert.deepEqual(report.auxblob, Buffer.from('cert table'));
  });

  it('leaves out an empty auxblob (the host provisioned no certificates)', async () => {
    const tsm = memoryTsm({ provider: 'sev_guest', outblob: Buffer.alloc(1184, 1) });
    assert.equal((await tsmReport(inblob, { fs: tsm.fs, base: '/tsm' })).auxblob, undefined);
  });

  it('detects a concurrent writer through generation, and still removes the object', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: QUOTE });
    tsm.hooks.beforeOutblobRead = (dir) => tsm.fs.writeFile(`${dir}/inblob`, Buffer.alloc(64, 0xcd)); // someone else
    await assert.rejects(
      tsmReport(inblob, { fs: tsm.fs, base: '/tsm' }),
      collectFailure(/written by someone else .*generation 0 → 2, expected 1/),
    );
    assert.equal(tsm.objects.size, 0);
  });

  it('refuses report data that is not 64 bytes before touching the file system', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: QUOTE });
    await assert.rejects(
      tsmReport(Buffer.alloc(32), { fs: tsm.fs, base: '/tsm' }),
      collectFailure(/exactly 64 bytes, not 32/),
    );
    assert.deepEqual(tsm.log, []);
  });

  it('names the path and errno when configfs-tsm is not there', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: QUOTE });
    await assert.rejects(
      tsmReport(inblob, { fs: tsm.fs, base: '/elsewhere' }),
      collectFailure(/cannot create the report object \/elsewhere\/report\/veil-\S+ \(ENOENT\)/),
    );
  });

  it('names outblob and the errno when the TEE cannot produce a quote', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: QUOTE });
    tsm.hooks.beforeOutblobRead = () => {
      throw Object.assign(new Error('io'), { code: 'EIO' });
    };
    await assert.rejects(tsmReport(inblob, { fs: tsm.fs, base: '/tsm' }), (err: AttestationError) => {
      assert.match(err.message, /^configfs-tsm: cannot read \/tsm\/report\/veil-\S+\/outblob \(EIO\)$/);
      assert.match(err.hint ?? '', /Quote Generation Service/);
      return true;
    });
    assert.equal(tsm.objects.size, 0);
  });

  it('refuses a provider it cannot send, and an invalid privlevel', async () => {
    const tsm = memoryTsm({ provider: 'arm_cca_guest' as 'tdx_guest', outblob: QUOTE });
    await assert.rejects(tsmReport(inblob, { fs: tsm.fs, base: '/tsm' }), collectFailure(/provider 'arm_cca_guest'/));
    await assert.rejects(
      tsmReport(inblob, { fs: tsm.fs, base: '/tsm', privlevel: 4 }),
      collectFailure(/privlevel must be 0–3/),
    );
  });

  it('tells the provider without asking for evidence', async () => {
    const tsm = memoryTsm({ provider: 'sev_guest', outblob: QUOTE });
    assert.equal(await tsmProvider({ fs: tsm.fs, base: '/tsm' }), 'sev_guest');
    assert.ok(!tsm.log.some((l) => /outblob|inblob/.test(l)));
    assert.equal(tsm.objects.size, 0);
  });
});
