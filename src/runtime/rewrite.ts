import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, openSync, renameSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';

const TMPFS_MAGIC = 0x01021994;

/**
 * Replaces `path` atomically: the new bytes go to a fresh temporary file in the same directory (O_EXCL,
 * O_NOFOLLOW: never through a link someone left there), which is then renamed over the old one. A reader opens
 * either the old file or the new one, never a partial one. `memoryOnly` refuses a directory that is not a tmpfs,
 * so a renewed secret never reaches a disk.
 */
export function replaceFile(path: string, content: Buffer, mode: number, memoryOnly: boolean): void {
  const dir = posix.dirname(path);
  if (memoryOnly && statfsSync(dir).type !== TMPFS_MAGIC) {
    throw new RuntimeError('RUNTIME_NAMESPACE', `${dir} is no longer a memory file system: not rewriting ${path}`, {
      hint: 'the program must leave the directories veil run mounts for its injected files in place',
    });
  }
  const temporary = posix.join(dir, `.${posix.basename(path)}.veil-${randomBytes(6).toString('hex')}`);
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
  const fd = openSync(temporary, flags, mode & 0o7777);
  try {
    for (let at = 0; at < content.length; ) at += writeSync(fd, content, at);
    fchmodSync(fd, mode & 0o7777);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temporary);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (err) {
    // A directory (or a mount point) in the target's place: no temporary file left behind with the content.
    unlinkSync(temporary);
    throw err;
  }
}

/** fstatfs(2) by architecture: perl-base has no statfs and no syscall.ph to look them up. */
const SYSCALLS: Record<string, { fstatfs: number }> = { x64: { fstatfs: 138 }, arm64: { fstatfs: 44 } };
/** A writer that has not finished by then is killed and the rewrite fails (the program is then restarted). */
export const WRITER_TIMEOUT_MS = 10_000;

/**
 * The writer that runs inside the program's namespaces and root (nsenter): paths resolve in the program's world,
 * so a link it planted can lead only where it could write itself, never to the host. It chdirs into each file's
 * directory (held from then on, whatever is renamed meanwhile), refuses one that is not a tmpfs (fstatfs from
 * inside), writes a temporary file there with O_EXCL|O_NOFOLLOW, fsyncs it and renames it over the target,
 * refusing a target that is a link or not a regular file. Its input, on stdin: path, mode, content, repeated.
 */
export const WRITER_SOURCE = String.raw`
use strict; use warnings;
use Fcntl qw(O_RDONLY O_WRONLY O_CREAT O_EXCL O_NOFOLLOW O_DIRECTORY);
use IO::Handle;
sub fail { print STDERR "$_[0]\n"; exit 1 }
my $fstatfs = shift @ARGV;
binmode STDIN;
my $in = do { local $/; <STDIN> } // '';
my $at = 0;
sub field {
  my $colon = index($in, ':', $at);
  my $n = $colon < 0 ? '' : substr($in, $at, $colon - $at);
  fail('malformed input') unless $n =~ /\A[0-9]+\z/ && $colon + 1 + $n <= length $in;
  $at = $colon + 1 + $n;
  return substr($in, $colon + 1, $n);
}
while ($at < length $in) {
  my ($path, $mode, $content) = (field(), oct(field()), field());
  my ($dir, $name) = $path =~ m{\A(/.*?)/?([^/]+)\z} or fail("$path is not an absolute file path");
  chdir($dir eq '' ? '/' : $dir) or fail("cannot enter $dir: $!");
  sysopen(my $here, '.', O_RDONLY | O_DIRECTORY) or fail("cannot open $dir: $!");
  my $buf = "\0" x 256;
  syscall($fstatfs, fileno($here), $buf) == 0 or fail("cannot statfs $dir: $!");
  unpack('Q', $buf) == 0x01021994 or fail("$dir is no longer a memory file system");
  my $tmp = ".$name.veil-" . join('', map { sprintf '%02x', int rand 256 } 1 .. 6);
  sysopen(my $f, $tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, $mode) or fail("cannot create a file in $dir: $!");
  binmode $f;
  my $ok = (print {$f} $content) && $f->flush && $f->sync && chmod($mode, $f) && close($f);
  my @old = lstat($name);
  if (!$ok || (@old && !-f _)) {
    my $why = $ok ? "$path is a link or not a regular file" : "cannot write $path: $!";
    unlink($tmp);
    fail($why);
  }
  rename($tmp, $name) or do { my $e = "$!"; unlink($tmp); fail("cannot replace $path: $e") };
}
`;

/**
 * The program's injected files, renewed where the program sees them. In its namespace: by the writer above,
 * run in the program's namespaces and root (the caller waits until the helper has exec'd the program, so every
 * mount is in place). Without a namespace: on the host, as veil run's own files.
 */
export async function rewriteInjected(files: RuntimeConfig['injectionFiles'], pid: number | undefined): Promise<void> {
  if (pid === undefined) {
    for (const file of files) replaceFile(file.path, Buffer.from(file.content, 'base64'), file.mode, false);
    return;
  }
  const input = Buffer.concat(
    files.flatMap((f) => [field(Buffer.from(f.path)), field(Buffer.from(f.mode.toString(8))), field(b64(f.content))]),
  );
  await runWriter(pid, input);
}

function b64(content: string): Buffer {
  return Buffer.from(content, 'base64');
}

function field(value: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${value.length}:`), value]);
}

function runWriter(pid: number, input: Buffer): Promise<void> {
  const calls = SYSCALLS[process.arch];
  if (!calls) return Promise.reject(namespaceError(`no fstatfs number known for ${process.arch}`));
  // --user only where unshare made one (veil run is not root): as root the program shares ours (launch.ts).
  // --preserve-credentials: the namespace denies setgroups (unshare --map-root-user), its root is our uid anyway.
  const user = process.getuid?.() === 0 ? [] : ['--user', '--preserve-credentials'];
  const args = ['--target', String(pid), ...user, '--mount', '--root', '--wd=/', '--', 'perl', '-e', WRITER_SOURCE];
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [...args, String(calls.fstatfs)], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), WRITER_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(namespaceError(`cannot start nsenter (${err.message})`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(namespaceError(stderr.trim() || `the writer ended with ${signal ?? `status ${code}`}`));
    });
    child.stdin.on('error', () => undefined); // a writer that died early reports through its status
    child.stdin.end(input);
  });
}

function namespaceError(why: string): RuntimeError {
  return new RuntimeError('RUNTIME_NAMESPACE', `cannot rewrite the injected files in the program's namespace: ${why}`, {
    hint: 'the program must leave the directories veil run mounts for its injected files in place (util-linux nsenter and perl are needed)',
  });
}
