import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RuntimeConfig } from './attest.js';
import { HELPER_SOURCE } from './helper.js';
import { encodePlan, launchPlan, type Step } from './plan.js';
import { resolveProgram } from './program.js';

const base: RuntimeConfig = { command: ['prog'], environment: {}, pwd: '/', injectionFiles: [] };
const file = (path: string, content = 'x') => ({ path, mode: 0o600, content: Buffer.from(content).toString('base64') });

/** Runs the real helper (no namespace: nothing here mounts) with `plan`, exec'ing `program`. */
function runHelper(plan: Buffer, program: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const fd = openSync(resolveProgram(program, process.env['PATH'] ?? ''), 'r');
  const child = spawn('perl', ['-e', HELPER_SOURCE, 'veil-launch', String(process.pid)], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', fd],
    env: { PATH: process.env['PATH'] ?? '' },
  });
  closeSync(fd);
  (child.stdio[3] as NodeJS.WritableStream).end(plan);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('launch plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-plan-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('mounts one tmpfs per injection directory, parents first, none beneath another', () => {
    const steps = launchPlan(
      { ...base, injectionFiles: [file('/a/b/x'), file('/a/y'), file('/c/z')] },
      { secure: true },
    );
    const mounts = steps.filter((s) => s.op === 'tmpfs').map((s) => (s as { path: string }).path);
    assert.deepEqual(mounts, ['/a', '/c']);
    const order = steps.map((s) => `${s.op}:${'path' in s ? s.path : ''}`);
    assert.ok(
      order.indexOf('tmpfs:/a') < order.indexOf('mkdir:/a/b'),
      'a mount never hides a directory made before it',
    );
    assert.deepEqual(steps.slice(-2), [{ op: 'arg', value: 'prog' }, { op: 'exec' }]);
  });

  it('refuses what only a namespace can do when there is none', () => {
    assert.throws(() => launchPlan(base, { secure: false, hosts: { api: '127.0.0.2' } }), {
      code: 'RUNTIME_NAMESPACE',
    });
    assert.throws(
      () => launchPlan({ ...base, fspf: { path: '/app/fs.fspf', key: 'k', tag: 't' } }, { secure: false }),
      { code: 'RUNTIME_NAMESPACE' },
    );
    assert.throws(() => launchPlan({ ...base, fspf: { path: '/app/fs.fspf' } }, { secure: true }), {
      code: 'RUNTIME_CONFIG',
    });
    assert.throws(() => launchPlan({ ...base, command: [] }, { secure: true }), { code: 'RUNTIME_CONFIG' });
  });

  it('refuses policy paths that are not plain, and mounts that would hide what a directory holds', () => {
    for (const path of ['/a/../../home/u/secret', '/tls//key', 'relative/key', '/proc/self/x', '/dev/stdout']) {
      assert.throws(
        () => launchPlan({ ...base, injectionFiles: [file(path)] }, { secure: true, tmp: '/tmp' }),
        { code: 'RUNTIME_CONFIG' },
        path,
      );
    }
    assert.throws(
      () => launchPlan({ ...base, injectionFiles: [file('/etc/app.conf')] }, { secure: true, tmp: '/tmp' }),
      /hiding its \d+ entries on this host/,
    );
    const shielded = { ...base, fspf: { path: '/app/fs.fspf', key: 'k', tag: 't' } };
    assert.throws(
      () =>
        launchPlan(
          { ...shielded, injectionFiles: [file('/app/config.json')] },
          { secure: true, tmp: '/tmp', entriesOf: () => 0 },
        ),
      /hiding the shielded code/,
    );
    assert.ok(
      launchPlan(
        { ...shielded, injectionFiles: [file('/app/tls/key')] },
        { secure: true, tmp: '/tmp', entriesOf: () => 3 },
      ).some((s) => s.op === 'tmpfs' && s.path === '/app/tls'),
      'a directory inside the decrypted tree is fine',
    );
  });

  it("sizes the shield's tmpfs from the shielded tree, with large folios where the kernel has them", () => {
    const shielded = { ...base, fspf: { path: '/app/fs.fspf', key: 'k', tag: 't' } };
    const tree = 300 * 1024 * 1024; // larger than the 64 MiB of the other memory file systems
    const plan = (huge: boolean) =>
      launchPlan(shielded, {
        secure: true,
        uid: 0,
        tmp: '/tmp/t',
        bytesOf: (dir) => (dir === '/app' ? tree : 0),
        hugeTmpfs: () => huge,
      });
    const staging = plan(true).find((s) => s.op === 'tmpfs' && s.path === '/tmp/t/.veil-fspf-staging');
    assert.deepEqual(staging, {
      op: 'tmpfs',
      path: '/tmp/t/.veil-fspf-staging',
      size: tree + 64 * 1024 * 1024,
      huge: true,
    });
    assert.match(encodePlan([staging!]).toString(), new RegExp(`size=${tree + 64 * 1024 * 1024},huge=within_size`));
    // by default the blobs on the host are counted, links followed (decryption follows them too)
    const host = join(dir, 'shielded');
    mkdirSync(host);
    writeFileSync(join(dir, 'blob'), Buffer.alloc(3000));
    symlinkSync(join(dir, 'blob'), join(host, 'linked.enc'));
    writeFileSync(join(host, 'fs.fspf'), Buffer.alloc(1000));
    const counted = launchPlan(
      { ...base, fspf: { path: `${host}/fs.fspf`, key: 'k', tag: 't' } },
      { secure: true, uid: 0, tmp: '/tmp/t' },
    ).find((s) => s.op === 'tmpfs' && s.path === '/tmp/t/.veil-fspf-staging');
    assert.equal((counted as { size: number }).size, 4000 + 64 * 1024 * 1024);
    const without = plan(false).find((s) => s.op === 'tmpfs' && s.path === '/tmp/t/.veil-fspf-staging');
    assert.doesNotMatch(encodePlan([without!]).toString(), /huge/);
    const injected = launchPlan(
      { ...base, injectionFiles: [file('/tls/a.pem')] },
      { secure: true, uid: 0, entriesOf: () => 0, hugeTmpfs: () => true },
    ).find((s) => s.op === 'tmpfs')!;
    assert.match(encodePlan([injected]).toString(), /size=67108864$/, 'injection files: 64 MiB, small pages');
  });

  it('maps host names through a file bound over the hosts file', () => {
    const steps = launchPlan(base, { secure: true, hosts: { api: '127.0.0.2' }, tmp: dir });
    const write = steps.find((s): s is Extract<Step, { op: 'write' }> => s.op === 'write')!;
    assert.match(write.content.toString(), /127\.0\.0\.2\tapi\n$/);
    assert.deepEqual(
      steps.find((s) => s.op === 'bind'),
      { op: 'bind', from: write.path, to: '/etc/hosts' },
    );
  });

  it('moves into a private root when a mount point cannot be made on the host without root', () => {
    const config = { ...base, injectionFiles: [file('/veil-missing-top/secret')] };
    assert.ok(
      !launchPlan(config, { secure: true, uid: 0 }).some((s) => s.op === 'chroot'),
      'root makes the directory itself',
    );
    const steps = launchPlan(config, {
      secure: true,
      uid: 65534,
      tmp: '/tmp',
      canCreate: (path) => path !== '/veil-missing-top',
    });
    const chroot = steps.findIndex((s) => s.op === 'chroot');
    assert.deepEqual(steps[chroot], { op: 'chroot', path: '/tmp/.veil-root' });
    assert.ok(
      steps.some((s) => s.op === 'rbind' && s.from === '/usr' && s.to === '/tmp/.veil-root/usr'),
      'the host system is bound in',
    );
    assert.ok(steps.some((s) => s.op === 'tmpfs' && s.path === '/tmp/.veil-root/veil-missing-top'));
    assert.deepEqual(
      steps.slice(chroot + 1).map((s) => s.op),
      ['chdir', 'arg', 'exec'],
      'nothing is mounted after entering it',
    );
  });

  it("makes the program the policy's argv[0], environment, directory and files exactly, by exec", async () => {
    // PYTHONCOERCECLOCALE=0: otherwise Python itself adds LC_CTYPE to its environment (PEP 538).
    const env = { A: '1', MULTI: 'two\nlines', EMPTY: '', PYTHONCOERCECLOCALE: '0' };
    const script =
      'import os, sys; print(sys.orig_argv); print(sorted(os.environ.items())); print(os.getcwd()); print(os.getppid())';
    const config: RuntimeConfig = {
      command: ['policy-name', '-c', script],
      environment: env,
      pwd: dir,
      injectionFiles: [
        { ...file(join(dir, 'inj', 's.bin')), content: Buffer.from([0, 10, 58, 255]).toString('base64'), mode: 0o640 },
      ],
    };
    const r = await runHelper(encodePlan(launchPlan(config, { secure: false })), '/usr/bin/python3');
    assert.equal(r.code, 0, r.stderr);
    const [argv, environ, cwd] = r.stdout.trim().split('\n');
    assert.equal(argv, `['policy-name', '-c', ${JSON.stringify(script).replace(/"/g, "'")}]`);
    assert.equal(environ, "[('A', '1'), ('EMPTY', ''), ('MULTI', 'two\\nlines'), ('PYTHONCOERCECLOCALE', '0')]");
    assert.equal(cwd, dir);
    assert.deepEqual(readFileSync(join(dir, 'inj', 's.bin')), Buffer.from([0, 10, 58, 255]));
    assert.equal(statSync(join(dir, 'inj', 's.bin')).mode & 0o777, 0o640);
  });

  it('refuses a malformed plan and a missing working directory, starting nothing', async () => {
    const bad = await runHelper(Buffer.from('5:mkdir999:/x'), 'true');
    assert.equal(bad.code, 126);
    assert.match(bad.stderr, /\[VEIL\|FATAL\] malformed launch plan/);
    // mount options beyond a size and large folios never reach mount(8), whoever wrote the plan
    const options = 'size=1,uid=0';
    const mount = await runHelper(Buffer.from(`5:tmpfs2:/x${options.length}:${options}`), 'true');
    assert.equal(mount.code, 126);
    assert.match(mount.stderr, /\[VEIL\|FATAL\] bad tmpfs options 'size=1,uid=0'/);
    const noDir = await runHelper(
      encodePlan(launchPlan({ ...base, command: ['echo', 'STARTED'], pwd: join(dir, 'nope') }, { secure: false })),
      'echo',
    );
    assert.equal(noDir.code, 126);
    assert.equal(noDir.stdout, '');
    assert.match(noDir.stderr, /cannot enter the working directory .*nope/);
  });
});
