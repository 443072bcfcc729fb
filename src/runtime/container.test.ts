import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RuntimeConfig } from './attest.js';
import { launchInContainer, readMounts } from './container.js';

describe('veil run --container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-container-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secrets = join(dir, 'tls');
  const config: RuntimeConfig = {
    command: ['policy-sh', '-c', 'echo "$0 $GREETING"; cat "$1"', join(secrets, 'key.pem')],
    environment: { GREETING: 'hello' },
    pwd: dir,
    injectionFiles: [{ path: join(secrets, 'key.pem'), mode: 0o600, content: Buffer.from('KEY').toString('base64') }],
  };

  it('reads mount points and types from mountinfo', () => {
    const mounts = readMounts(
      '36 35 98:0 / /tls rw,noatime master:1 - tmpfs tmpfs rw\n37 35 98:0 / /a\\040b rw - ext4 /dev/sda1 rw\n',
    );
    assert.deepEqual(
      [...mounts],
      [
        ['/tls', 'tmpfs'],
        ['/a b', 'ext4'],
      ],
    );
  });

  it('refuses to write secrets where no memory file system is mounted', async () => {
    const fd = openSync('/bin/sh', 'r');
    try {
      await assert.rejects(
        launchInContainer(config, fd, new Map([[secrets, 'ext4']])),
        (e: Error & { code?: string }) =>
          e.code === 'RUNTIME_NAMESPACE' && /is not on a memory file system \(.* is ext4\)/.test(e.message),
      );
    } finally {
      closeSync(fd);
    }
  });

  it('does not follow a link left in the volume to a file on a disk', async () => {
    const { symlinkSync, writeFileSync: write, readFileSync: read } = await import('node:fs');
    const volume = join(dir, 'shared');
    const disk = join(dir, 'disk.txt');
    write(disk, 'untouched');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(volume, { recursive: true });
    symlinkSync(disk, join(volume, 'key.pem'));
    const fd = openSync('/bin/true', 'r');
    try {
      const code = await launchInContainer(
        {
          ...config,
          command: ['true'],
          injectionFiles: [
            { path: join(volume, 'key.pem'), mode: 0o600, content: Buffer.from('KEY').toString('base64') },
          ],
        },
        fd,
        new Map([
          [volume, 'tmpfs'],
          [dir, 'ext4'],
        ]),
      );
      assert.equal(code, 0);
      assert.equal(read(disk, 'utf8'), 'untouched');
      assert.equal(read(join(volume, 'key.pem'), 'utf8'), 'KEY');
    } finally {
      closeSync(fd);
    }
  });

  it("starts the measured file with the policy's argv[0], environment and injected files", async () => {
    const fd = openSync('/bin/sh', 'r');
    const out = join(dir, 'out');
    try {
      // The program inherits this process's stdout; it writes to a file for the assertion instead.
      const script = `exec >${out}; tr "\\0" " " </proc/$$/cmdline; echo; echo "$GREETING"; cat "$1"`;
      const code = await launchInContainer(
        { ...config, command: ['policy-sh', '-c', script, 'zero', join(secrets, 'key.pem')] },
        fd,
        new Map([[secrets, 'tmpfs']]),
      );
      assert.equal(code, 0);
      const [cmdline, greeting, key] = readFileSync(out, 'utf8').split('\n');
      assert.match(cmdline!, /^policy-sh -c /);
      assert.deepEqual([greeting, key], ['hello', 'KEY']);
      assert.equal(statSync(join(secrets, 'key.pem')).mode & 0o777, 0o600);
    } finally {
      closeSync(fd);
    }
  });
});
