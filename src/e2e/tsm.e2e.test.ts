import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, curl, opensslIdentity, simulationHost, startCas, tempDir, veil, type CasProcess } from './harness.js';
import { fuseStandInPossible, mountTsmStandIn, type MountedStandIn } from './tsm-standin.js';

/**
 * `veil run`'s evidence sources end to end: a real CAS and real `veil run` processes. Hardware evidence comes
 * from a TEST-ONLY configfs-tsm stand-in (a FUSE file system following the kernel ABI, see tsm-standin.ts)
 * that returns a recorded real TDX quote — which cannot bind this run's nonce, so the CAS must refuse it.
 */
describe('veil run evidence sources', async () => {
  const dir = tempDir('veil-e2e-tsm-');
  // In CI the stand-in must run: a missing piece fails there instead of skipping the hardware path unseen.
  const fuse = process.env['CI'] ? false : await fuseStandInPossible();
  let cas: CasProcess;
  let me: { cert: string; key: string };
  let measurement: string;
  let rtmr3: string;
  let env: NodeJS.ProcessEnv;
  let standIn: MountedStandIn | undefined;

  // hw: the default attestation (hardware), the service identified by the TDX RTMR3 veil run extends;
  // dbg: attestation mode none, the program identified by its simulation measurement.
  const session = (name: string, identity: string, security: string) =>
    [
      `name: ${name}`,
      'services:',
      '  - name: sh',
      `    ${identity}`,
      '    command: [sh, -c, "echo STARTED"]',
      '    pwd: /',
      security,
      '',
    ].join('\n');
  const create = async (name: string, identity: string, security = '') => {
    const res = await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: session(name, identity, security) });
    assert.equal(res.status, 201, res.body);
  };
  const run = (configId: string, extra: string[], hostEnv: NodeJS.ProcessEnv) =>
    veil(['run', ...extra, '--', 'sh'], { ...env, ...hostEnv, SCONE_CONFIG_ID: configId });

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    me = await opensslIdentity(dir.path, 'me');
    const measured = (await veil(['measure', '--rtmr', 'sh'], {})).stdout.split('\n');
    measurement = measured[0]!;
    rtmr3 = /^rtmr3 ([0-9a-f]{96})$/.exec(measured[1]!)![1]!;
    const host = await simulationHost(dir.path);
    env = {
      SCONE_CAS_ADDR: new URL(cas.url).host,
      VEIL_CAS_FINGERPRINT: cas.fingerprint,
      VEIL_EVIDENCE: '',
      VEIL_TSM_PATH: '',
      VEIL_TDX_MEASUREMENTS_PATH: '',
      ...host.env,
    };
    // The recorded quote's TD image, firmware and kernel, and the program veil run extends into RTMR3.
    const q = readFileSync(join(ROOT, 'testdata', 'vectors', 'tdx', 'go-tdx-guest', 'quote_v5_sample.dat'));
    const reg = (offset: number) => q.subarray(54 + offset, 54 + offset + 48).toString('hex');
    await create(
      'hw',
      `attestation: {tdx: {mrtd: ${reg(136)}, rtmr0: ${reg(328)}, rtmr1: ${reg(376)}, rtmr2: ${reg(424)}, rtmr3: ${rtmr3}}}`,
    );
    await create(
      'dbg',
      `mrenclaves: [${measurement}]\n    platforms: [${host.id}]`,
      'security: {attestation: {mode: none}}',
    );
    if (!fuse) {
      mkdirSync(join(dir.path, 'mnt'));
      standIn = await mountTsmStandIn(
        join(dir.path, 'mnt'),
        {
          provider: 'tdx_guest',
          outblob: readFileSync(join(ROOT, 'testdata', 'vectors', 'tdx', 'go-tdx-guest', 'quote_v5_sample.dat')),
          rtmr: true,
        },
        dir.path,
      );
    }
  });
  after(async () => {
    await standIn?.unmount();
    await cas?.stop();
    dir.cleanup();
  });

  describe('TDX hardware evidence from configfs-tsm (FUSE stand-in with a recorded quote)', {
    skip: fuse || false,
  }, () => {
    let result: { code: number; stdout: string; stderr: string };
    before(async () => {
      result = await run('hw/sh', [], {
        VEIL_TSM_PATH: standIn!.tsm,
        VEIL_TDX_MEASUREMENTS_PATH: standIn!.measurements,
      });
    });

    it('sends a TDX quote from configfs-tsm, having extended RTMR3 with the runtime and the program, and the CAS refuses it: nothing starts', async () => {
      assert.match(
        result.stderr,
        /^\[VEIL\|INFO\] evidence: TDX quote from configfs-tsm \(provider tdx_guest; 5006 bytes; RTMR3 extended with the runtime and the program\)$/m,
      );
      assert.doesNotMatch(result.stderr, /SIMULATION/);
      assert.notEqual(result.code, 0);
      assert.doesNotMatch(result.stdout, /STARTED/);
      assert.match(result.stderr, /\[VEIL\|FATAL\] Could not start sh: Attestation failed: /);
      // What veil run extended is what `veil measure --rtmr` predicts; the report object is gone.
      const value = readFileSync(join(standIn!.measurements, 'rtmr3:sha384')).toString('hex');
      assert.equal(value, rtmr3);
      assert.deepEqual(readdirSync(join(standIn!.tsm, 'report')), []);
    });

    it('is verified by the CAS up to the binding, and refused because the recorded quote cannot bind this nonce', () => {
      assert.match(
        result.stderr,
        /Attestation failed: report data: the evidence's report data does not bind this nonce and this connection key/,
      );
    });
  });

  describe('the CAS attests itself with configfs-tsm evidence (same stand-in)', { skip: fuse || false }, () => {
    let teeCas: CasProcess;
    const V5_MRTD = '7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876';
    before(async () => {
      teeCas = await startCas(join(dir.path, 'tee-data'), dir.path, [], { VEIL_TSM_PATH: standIn!.tsm });
    });
    after(async () => {
      await teeCas?.stop();
    });

    it('says so at start and serves its evidence at GET /v1/attestation?nonce=', async () => {
      assert.match(teeCas.log(), /this CAS attests itself with TEE evidence from configfs-tsm/);
      const res = await curl(teeCas, `${teeCas.url}/v1/attestation?nonce=${'ab'.repeat(32)}`);
      assert.equal(res.status, 200, res.body);
      const body = res.json() as { ca_fingerprint: string; evidence: { type: string; quote: string } };
      assert.equal(body.ca_fingerprint, teeCas.fingerprint);
      assert.equal(body.evidence.type, 'tdx');
      assert.ok(
        Buffer.from(body.evidence.quote, 'base64').equals(
          readFileSync(join(ROOT, 'testdata', 'vectors', 'tdx', 'go-tdx-guest', 'quote_v5_sample.dat')),
        ),
      );
      assert.equal((await curl(teeCas, `${teeCas.url}/v1/attestation?nonce=xyz`)).status, 400);
    });

    it('veil cas attest verifies the quote and refuses it: it cannot bind the nonce and the CA key', async () => {
      const home = { VEIL_HOME: join(dir.path, 'attest-home') };
      const r = await veil(['cas', 'attest', teeCas.url, '--mrtd', V5_MRTD], home);
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /report data: the CAS's evidence does not bind this nonce and the CA key it presents.*\[ATTESTATION_BINDING\]/s,
      );
      assert.doesNotMatch(r.stdout, /trustworthy/);
    });

    it('a CAS without a TEE is not trusted by a measurement, only by its fingerprint', async () => {
      const home = { VEIL_HOME: join(dir.path, 'attest-home-2') };
      const r = await veil(['cas', 'attest', cas.url, '--mrtd', V5_MRTD], home);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has no TEE evidence, so the measurement you gave cannot be checked/);
      const ok = await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], home);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /trusted only by the CA fingerprint you gave/);
    });
  });

  it('refuses to start without a TEE evidence source unless simulation is asked for, and says how to ask', async () => {
    const r = await run('hw/sh', [], { VEIL_TSM_PATH: join(dir.path, 'no-configfs') });
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout, /STARTED/);
    assert.match(
      r.stderr,
      /\[VEIL\|FATAL\] Could not start sh: no TEE evidence source found: \S+\/no-configfs\/report does not exist \(VEIL_TSM_PATH\)/,
    );
    assert.match(r.stderr, /→ .*veil run --mode debug or VEIL_EVIDENCE=simulation .*\[RUNTIME_NO_TEE\]/);
  });

  it('refuses without VEIL_TSM_PATH on a host without configfs-tsm', {
    skip: existsSync('/sys/kernel/config/tsm/report') && 'this host has configfs-tsm',
  }, async () => {
    const r = await run('hw/sh', [], {});
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /no TEE evidence source found: \/sys\/kernel\/config\/tsm\/report does not exist.*\[RUNTIME_NO_TEE\]/s,
    );
  });

  it('with --mode debug sends simulation evidence and says so; a hardware session refuses it', async () => {
    const ok = await run('dbg/sh', ['--mode', 'debug'], {});
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'STARTED\n');
    assert.match(ok.stderr, /^\[VEIL\|WARNING\] evidence: SIMULATION \(no TEE\): .*\(veil run --mode debug\)/m);
    const refused = await run('hw/sh', ['--mode', 'debug'], {});
    assert.notEqual(refused.code, 0);
    assert.doesNotMatch(refused.stdout, /STARTED/);
    assert.match(refused.stderr, /Attestation failed: .*simulation/);
  });
});
