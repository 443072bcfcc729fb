import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hardwareReportData, reportData } from '../attestation/evidence.js';
import { verifySimulation } from '../attestation/verify.js';
import { expectedRtmr3 } from '../attestation/rtmr.js';
import { memoryTsm, type StandInRecording } from '../e2e/tsm-standin.js';
import { RuntimeError } from './errors.js';
import { chooseEvidenceSource, tsmSource } from './evidence-source.js';
import { hostKeyPath, loadHostKey } from './host-key.js';

const program = {
  measurement: 'ab'.repeat(32),
  runtimeCodeDigest: Buffer.alloc(32, 1),
  programSha256: Buffer.alloc(32, 2),
};
const binding = { nonce: Buffer.alloc(32, 7), spki: Buffer.from('spki der') };
const QUOTE = Buffer.from('a recorded TDX quote');
const hostDir = mkdtempSync(join(tmpdir(), 'veil-host-'));
const VEIL_HOST_KEY = join(hostDir, 'host', 'host-key.pem');
after(() => rmSync(hostDir, { recursive: true, force: true }));

function setup(recording: StandInRecording) {
  const tsm = memoryTsm(recording);
  const lines: string[] = [];
  let inblob: Buffer | undefined;
  tsm.hooks.beforeOutblobRead = (dir) => {
    inblob = tsm.objects.get(dir.split('/').pop()!)!.inblob;
  };
  const env = { VEIL_TSM_PATH: tsm.paths.base, VEIL_TDX_MEASUREMENTS_PATH: tsm.paths.measurements, VEIL_HOST_KEY };
  const choose = (mode?: 'debug' | 'hardware', extra: NodeJS.ProcessEnv = {}) =>
    chooseEvidenceSource({ mode, env: { ...env, ...extra }, fs: tsm.fs, program, log: (l) => lines.push(l) });
  return { tsm, lines, choose, inblob: () => inblob };
}

function noTee(err: unknown): boolean {
  assert.ok(err instanceof RuntimeError);
  assert.equal(err.code, 'RUNTIME_NO_TEE');
  assert.match(err.message, /^no TEE evidence source found: \/nowhere\/report does not exist \(VEIL_TSM_PATH\)/);
  assert.match(err.hint ?? '', /--mode debug or VEIL_EVIDENCE=simulation/);
  return true;
}

describe('choosing the evidence source', () => {
  it('sends simulation only when asked for, and says so', async () => {
    for (const [mode, env] of [
      ['debug', {}],
      [undefined, { VEIL_EVIDENCE: 'simulation' }],
    ] as const) {
      const { choose, lines, tsm } = setup({ provider: 'tdx_guest', outblob: QUOTE });
      const source = await choose(mode, env);
      assert.equal(source.kind, 'simulation');
      const evidence = await source.collect(binding);
      assert.ok(evidence.type === 'simulation');
      assert.equal(evidence.measurement, program.measurement);
      assert.equal(evidence.reportData, reportData(binding.nonce, binding.spki).toString('hex'));
      // Signed by this host's key (the one `veil host id` names): the CAS's verifier accepts it for that host.
      const host = await loadHostKey(hostKeyPath({ VEIL_HOST_KEY }));
      assert.equal(Buffer.from(evidence.hostSpki, 'base64').equals(host.spki), true);
      const verified = await verifySimulation(
        evidence,
        binding,
        { mode: 'none' },
        { name: 'sh', platforms: [host.id] },
      );
      assert.equal(verified.platform, host.id);
      assert.match(
        lines.join('\n'),
        new RegExp(`^\\[VEIL\\|WARNING\\] evidence: SIMULATION \\(no TEE\\): .*signed by host key ${host.id}`),
      );
      assert.deepEqual(tsm.log, [], 'simulation does not touch configfs-tsm, even where it exists');
    }
  });

  it('never falls back to simulation: no configfs-tsm and no request for simulation is an error that says how to ask', async () => {
    const { choose } = setup({ provider: 'tdx_guest', outblob: QUOTE });
    await assert.rejects(choose(undefined, { VEIL_TSM_PATH: '/nowhere' }), noTee);
    await assert.rejects(choose('hardware', { VEIL_TSM_PATH: '/nowhere' }), noTee);
  });

  it('refuses an unknown VEIL_EVIDENCE and a contradiction between it and --mode', async () => {
    const { choose } = setup({ provider: 'tdx_guest', outblob: QUOTE });
    await assert.rejects(
      choose(undefined, { VEIL_EVIDENCE: 'sgx' }),
      (err: RuntimeError) => err.code === 'RUNTIME_CONFIG' && /VEIL_EVIDENCE=sgx/.test(err.message),
    );
    await assert.rejects(
      choose('hardware', { VEIL_EVIDENCE: 'simulation' }),
      /--mode hardware contradicts VEIL_EVIDENCE=simulation/,
    );
  });

  it('picks configfs-tsm where the host has it, with the kind its provider names', async () => {
    assert.equal((await setup({ provider: 'tdx_guest', outblob: QUOTE }).choose()).kind, 'tdx');
    assert.equal((await setup({ provider: 'sev_guest', outblob: QUOTE }).choose()).kind, 'sev-snp');
  });
});

describe('hardware evidence from configfs-tsm', () => {
  it('TDX: extends RTMR3 with the runtime and the program, then quotes the 64-byte report data', async () => {
    const { choose, lines, tsm, inblob } = setup({ provider: 'tdx_guest', outblob: QUOTE, rtmr: true });
    const evidence = await (await choose()).collect(binding);
    assert.equal(evidence.type, 'tdx');
    assert.ok(evidence.type === 'tdx');
    assert.equal(evidence.quote, QUOTE.toString('base64'));
    assert.deepEqual(
      evidence.rtmrLog?.map((e) => e.description.split(' ')[0]),
      ['veil-runtime', 'program'],
    );
    assert.deepEqual(inblob(), hardwareReportData(binding.nonce, binding.spki));
    assert.deepEqual(tsm.rtmrs[3], expectedRtmr3(program.runtimeCodeDigest, program.programSha256));
    assert.deepEqual(lines, [
      '[VEIL|INFO] evidence: TDX quote from configfs-tsm (provider tdx_guest; 20 bytes; RTMR3 extended with the runtime and the program)',
    ]);
    const order = tsm.log.filter((l) => /rtmr3|inblob/.test(l)).map((l) => l.split(' ')[0] + ' ' + l.split('/').pop());
    assert.deepEqual(
      order,
      ['read rtmr3:sha384', 'write rtmr3:sha384 48', 'write rtmr3:sha384 48', 'read rtmr3:sha384', 'write inblob 64'],
      'RTMR3 is extended before the quote',
    );
  });

  it('TDX without the kernel RTMR interface: quotes anyway, with an empty log and a warning that the quote does not name the program', async () => {
    const { choose, lines } = setup({ provider: 'tdx_guest', outblob: QUOTE });
    const evidence = await (await choose()).collect(binding);
    assert.deepEqual(evidence, { type: 'tdx', quote: QUOTE.toString('base64'), rtmrLog: [] });
    assert.match(
      lines[0]!,
      /^\[VEIL\|WARNING\] evidence: no TDX RTMR interface .* RTMR3 is not extended, so a TDX quote does not name the program/,
    );
    assert.match(lines[1]!, /RTMR3 NOT extended/);
  });

  it('TDX: warns when RTMR3 was extended before (a second run in the TD), and still logs what it extended', async () => {
    const { choose, lines, tsm } = setup({ provider: 'tdx_guest', outblob: QUOTE, rtmr: true });
    tsm.rtmrs[3] = Buffer.alloc(48, 9);
    const evidence = await (await choose()).collect(binding);
    assert.equal(evidence.type === 'tdx' && evidence.rtmrLog?.length, 2);
    assert.match(lines[0]!, /RTMR3 was already extended in this TD/);
  });

  it('SEV-SNP: sends the report and the certificate table, and extends nothing', async () => {
    const { choose, lines, tsm } = setup({
      provider: 'sev_guest',
      outblob: Buffer.alloc(1184, 3),
      auxblob: Buffer.from('certs'),
    });
    const evidence = await (await choose()).collect(binding);
    assert.deepEqual(evidence, {
      type: 'sev-snp',
      quote: Buffer.alloc(1184, 3).toString('base64'),
      auxblob: Buffer.from('certs').toString('base64'),
    });
    assert.deepEqual(lines, [
      '[VEIL|INFO] evidence: SEV-SNP attestation report from configfs-tsm (provider sev_guest; with certificate table)',
    ]);
    assert.ok(!tsm.log.some((l) => l.includes('rtmr')));
  });

  it('turns a collection failure into a RuntimeError that names the path', async () => {
    const { tsm } = setup({ provider: 'tdx_guest', outblob: QUOTE });
    tsm.hooks.beforeOutblobRead = () => {
      throw Object.assign(new Error('no QGS'), { code: 'EIO' });
    };
    const source = tsmSource({
      fs: tsm.fs,
      base: tsm.paths.base,
      runtimeCodeDigest: program.runtimeCodeDigest,
      programSha256: program.programSha256,
    });
    await assert.rejects(source.collect(binding), (err: RuntimeError) => {
      assert.equal(err.code, 'RUNTIME_EVIDENCE');
      assert.match(
        err.message,
        /^cannot collect hardware evidence: configfs-tsm: cannot read \/tsm\/report\/veil-\S+\/outblob \(EIO\)/,
      );
      return true;
    });
  });

  it('refuses a report whose provider is not the one chosen (the TEE kind changed underneath)', async () => {
    const { tsm } = setup({ provider: 'tdx_guest', outblob: QUOTE });
    const source = tsmSource({
      fs: tsm.fs,
      base: tsm.paths.base,
      provider: 'sev_guest',
      runtimeCodeDigest: program.runtimeCodeDigest,
      programSha256: program.programSha256,
    });
    await assert.rejects(
      source.collect(binding),
      (err: RuntimeError) =>
        err.code === 'RUNTIME_EVIDENCE' && /changed its provider from sev_guest to tdx_guest/.test(err.message),
    );
  });
});
