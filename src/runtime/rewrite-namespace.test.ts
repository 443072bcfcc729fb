import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { rewriteInjected } from './rewrite.js';

/**
 * The rewrite resolves paths in the program's own world: links the program planted in its tmpfs can neither
 * lead to a host directory (an absolute link resolved by the host, as through /proc/<pid>/root) nor be written
 * through. Real namespaces, as root and — by su to nobody — as an ordinary user in a user namespace.
 */
interface Outcome {
  onHost: string[];
  inside: string;
  link: string;
  victim: string;
  /** The rewrite of a file in a directory on a disk (null where the temporary directory is a tmpfs). */
  disk: string | null;
}

const content = Buffer.from('renewed\n').toString('base64');

/** The program's world: a tmpfs for its files, with `certs` -> a host tmpfs directory covered in the namespace. */
async function scenario(base: string): Promise<Outcome> {
  const tls = join(base, 'tls');
  const shm = mkdtempSync('/dev/shm/veil-escape-');
  const victim = join(base, 'victim');
  writeFileSync(victim, 'untouched');
  const script =
    `mount -t tmpfs tmpfs ${tls} && mount -t tmpfs tmpfs ${shm} && ln -s ${shm} ${tls}/certs && ` +
    `ln -s ${victim} ${tls}/cert.pem && echo ready && exec sleep 60`;
  const user = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  const child = spawn('unshare', [...user, '--mount', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', () => reject(new Error('the namespace did not start')));
    });
    const pid = child.pid!;
    await rewriteInjected([{ path: `${tls}/certs/cert.pem`, mode: 0o600, content }], pid);
    const link = await rewriteInjected([{ path: `${tls}/cert.pem`, mode: 0o600, content }], pid).then(
      () => 'written',
      (err: { code?: string; message: string }) => `${err.code}: ${err.message}`,
    );
    const onDisk = statfsSync(base).type !== 0x01021994;
    const disk = onDisk
      ? await rewriteInjected([{ path: join(base, 'victim'), mode: 0o600, content }], pid).then(
          () => 'written',
          (err: { code?: string; message: string }) => `${err.code}: ${err.message}`,
        )
      : null;
    const inside = readFileSync(`/proc/${pid}/root${shm}/cert.pem`, 'utf8');
    return { onHost: readdirSync(shm), inside, link, victim: readFileSync(victim, 'utf8'), disk };
  } finally {
    child.kill('SIGKILL');
    rmSync(shm, { recursive: true, force: true });
  }
}

function check(outcome: Outcome): void {
  assert.deepEqual(outcome.onHost, [], 'the renewed file went through the link to the host');
  assert.equal(outcome.inside, 'renewed\n', "the file is in the program's own world");
  assert.match(outcome.link, /^RUNTIME_NAMESPACE: .*cert\.pem is a link or not a regular file/);
  assert.equal(outcome.victim, 'untouched');
  if (outcome.disk !== null) assert.match(outcome.disk, /^RUNTIME_NAMESPACE: .* is no longer a memory file system/);
}

if (process.argv[2] === 'scenario') {
  console.log(JSON.stringify(await scenario(process.argv[3]!)));
} else {
  describe("rewriteInjected resolves paths in the program's namespace", () => {
    it('a planted link never leads the rewrite to the host, nor is written through (veil run as it runs)', async () => {
      const base = mkdtempSync(join(tmpdir(), 'veil-escape-'));
      mkdirSync(join(base, 'tls'));
      try {
        check(await scenario(base));
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });

    it('the same as an ordinary user, in a user namespace (su to nobody)', async (t) => {
      if (process.getuid?.() !== 0) return t.skip('the test above ran unprivileged already');
      const exec = promisify(execFile);
      const self = fileURLToPath(import.meta.url);
      // nobody must reach this file too (a copy in a private temporary directory, as the mutation check makes, is not).
      const probe = `test -r ${self} && unshare --user --map-root-user --mount true`;
      const possible = await exec('su', ['nobody', '-s', '/bin/sh', '-c', probe]).then(
        () => true,
        () => false,
      );
      if (!possible) return t.skip('nobody cannot read this test or make a user namespace here');
      const base = mkdtempSync(join(tmpdir(), 'veil-escape-'));
      try {
        const { stdout } = await exec('id', ['-u', 'nobody']);
        const nobody = Number(stdout.trim());
        mkdirSync(join(base, 'tls'));
        for (const dir of [base, join(base, 'tls')]) chownSync(dir, nobody, nobody);
        const command = `cd / && PATH=/usr/sbin:/usr/bin:/sbin:/bin ${process.execPath} ${self} scenario ${base}`;
        const out = await exec('su', ['nobody', '-s', '/bin/sh', '-c', command]);
        const outcome = JSON.parse(out.stdout.trim().split('\n').pop()!) as Outcome;
        check(outcome);
        console.log('# unprivileged: renewed inside, 0 files on the host, link refused');
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });
  });
}
