import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, curl, opensslIdentity, run, startCas, tempDir, veil, type CasProcess } from './harness.js';

/** Can `nobody` make a user namespace here? (The test runs as root and becomes nobody with su.) */
async function rootlessPossible(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const r = await run('su', ['nobody', '-s', '/bin/sh', '-c', 'unshare --user --map-root-user --mount true']);
  return r.code === 0;
}

describe('veil run without root', async () => {
  const possible = await rootlessPossible();
  const dir = tempDir('veil-rootless-');
  let cas: CasProcess;
  const top = `/veil-rootless-${randomBytes(4).toString('hex')}`;
  // nobody's own host key, in a 0700 directory nobody owns (its HOME does not exist).
  let hostDir: string | undefined;
  const hostEnv = () => `VEIL_HOST_KEY=${hostDir}/host-key.pem PATH=/usr/bin:/bin`;

  before(async () => {
    if (!possible) return;
    cas = await startCas(join(dir.path, 'data'), dir.path);
    const me = await opensslIdentity(dir.path, 'me');
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    hostDir = mkdtempSync(join(tmpdir(), 'veil-rootless-host-'));
    const nobody = Number((await run('id', ['-u', 'nobody'])).stdout.trim());
    chownSync(hostDir, nobody, nobody);
    const id = await run('su', [
      'nobody',
      '-s',
      '/bin/sh',
      '-c',
      `cd ${ROOT} && env -i ${hostEnv()} ${process.execPath} bin/veil.js host id`,
    ]);
    assert.equal(id.code, 0, id.stderr);
    const session = [
      'name: rootless',
      'services:',
      '  - name: sh',
      `    mrenclaves: [${measurement}]`,
      `    platforms: [${id.stdout.trim()}]`,
      `    command: [sh, -c, "cat ${top}/secret.txt; id -u"]`,
      '    pwd: /',
      '    image_name: img',
      'images:',
      '  - name: img',
      '    injection_files:',
      `      - {path: ${top}/secret.txt, content: "pw=$$SCONE::pw$$"}`,
      'secrets:',
      '  - {name: pw, kind: ascii, value: s3cr3t}',
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: session })).status, 201);
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
    if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  });

  it('injects into a top-level directory the host does not have, through a private root, leaving nothing behind', {
    skip: !possible && 'needs root to become nobody, and unprivileged user namespaces',
  }, async () => {
    const env = `SCONE_CONFIG_ID=rootless/sh SCONE_CAS_ADDR=${new URL(cas.url).host} VEIL_CAS_FINGERPRINT=${cas.fingerprint} ${hostEnv()}`;
    const r = await run('su', [
      'nobody',
      '-s',
      '/bin/sh',
      '-c',
      `cd ${ROOT} && env -i ${env} ${process.execPath} bin/veil.js run --mode debug -- sh`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pw=s3cr3t/);
    assert.ok(!existsSync(top), `${top} must not exist on the host`);
  });
});
