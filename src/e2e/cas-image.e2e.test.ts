import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { run, tempDir, veil, waitFor } from './harness.js';
import { freePort } from './registry.js';

/** The CAS's own container image: built from scratch, unpacked with umoci, and run. */
describe('CAS image', () => {
  const dir = tempDir('veil-cas-image-');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  after(() => dir.cleanup());

  it('builds from scratch and serves /v1/version from its own root file system', {
    skip: process.getuid?.() !== 0 && 'chroot needs root',
  }, async () => {
    const built = await veil(['cas', 'image', '--to', 'veil/cas:test', '-t', join(dir.path, 'target')], env);
    assert.equal(built.code, 0, built.stderr);
    const unpacked = join(dir.path, 'unpacked');
    assert.equal(
      (
        await run('umoci', [
          'unpack',
          '--rootless',
          '--image',
          `${join(dir.path, 'target', 'oci', 'veil-cas')}:test`,
          unpacked,
        ])
      ).code,
      0,
    );
    const spec = JSON.parse(readFileSync(join(unpacked, 'config.json'), 'utf8')) as { process: { args: string[] } };
    const port = await freePort();
    const args = spec.process.args.map((a) => (a === '0.0.0.0:8081' ? `127.0.0.1:${port}` : a));
    const cas = spawn('/usr/sbin/chroot', [join(unpacked, 'rootfs'), ...args], {
      env: { PATH: '/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    cas.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cas.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        () => /fingerprint \(SHA-256\): [0-9a-f]{64}/.test(out) || cas.exitCode !== null,
        20_000,
        () => `the CAS did not start: ${out}`,
      );
      const fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(out)![1]!;
      const url = `https://127.0.0.1:${port}`;
      assert.equal((await veil(['cas', 'attest', url, '-c', fingerprint], env)).code, 0);
      writeFileSync(join(dir.path, 'ca.pem'), (await veil(['cas', 'show-certificate', url], env)).stdout);
      const version = await run('curl', ['-sS', '--cacert', join(dir.path, 'ca.pem'), `${url}/v1/version`]);
      assert.equal(version.code, 0, version.stderr);
      assert.equal(JSON.parse(version.stdout).implementation, 'veil');
    } finally {
      cas.kill('SIGTERM');
      await new Promise((r) => (cas.exitCode !== null ? r(null) : cas.once('exit', r)));
    }
  });
});
