import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rewriteInjected } from '../runtime/rewrite.js';
import { tempDir, waitFor } from './harness.js';

/**
 * The rewrite reaches into a real private mount namespace, as veil run's program has one: a tmpfs mounted
 * there over a host directory that stays empty. Called in-process (not through bin/veil.js), so the mutation
 * check can change the code this runs.
 */
describe('rewriteInjected: renewed files land in the program namespace, never on the host', () => {
  const dir = tempDir('veil-renewal-ns-');
  const tls = join(dir.path, 'tls');
  const unshare = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  const script = `mkdir -p ${tls} && mount -t tmpfs tmpfs ${tls} && echo old > ${tls}/cert.pem && echo ready && exec sleep 60`;
  const child = spawn('unshare', [...unshare, '--mount', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  after(() => {
    child.kill('SIGKILL');
    dir.cleanup();
  });

  it('through /proc/<pid>/root, on the namespace tmpfs', async () => {
    await waitFor(
      () => out.includes('ready') || child.exitCode !== null,
      10_000,
      () => 'the namespace did not start',
    );
    assert.equal(child.exitCode, null, 'unshare failed');
    const content = Buffer.from('renewed\n').toString('base64');
    await rewriteInjected([{ path: `${tls}/cert.pem`, mode: 0o644, content }], child.pid!);
    assert.equal(readFileSync(`/proc/${child.pid}/root${tls}/cert.pem`, 'utf8'), 'renewed\n');
    assert.deepEqual(readdirSync(tls), [], 'nothing on the host');
  });
});
