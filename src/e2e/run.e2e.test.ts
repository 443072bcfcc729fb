import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  VEIL_BIN,
  curl,
  opensslIdentity,
  simulationHost,
  startCas,
  tempDir,
  veil,
  waitFor,
  type CasProcess,
} from './harness.js';

/** `veil run` end to end: a real CAS, a real program (/bin/sh), real namespaces; simulation evidence (--mode debug: no TEE here). */
describe('veil run', () => {
  const dir = tempDir();
  const injectDir = join(dir.path, 'inject');
  let cas: CasProcess;
  let me: { cert: string; key: string };
  let measurement: string;
  let env: NodeJS.ProcessEnv;
  let hostId: string;

  const session = (
    name: string,
    opts: { mrenclave?: string; tolerate?: string; script: string; platforms?: string[] },
  ) =>
    [
      `name: ${name}`,
      'services:',
      '  - name: sh',
      `    mrenclaves: [${opts.mrenclave ?? measurement}]`,
      `    platforms: [${(opts.platforms ?? [hostId]).join(', ')}]`,
      `    command: [sh, -c, ${JSON.stringify(opts.script)}, first-arg]`,
      '    environment: {GREETING: hello, PW: "$$SCONE::pw$$"}',
      `    pwd: ${dir.path}`,
      '    image_name: img',
      'images:',
      '  - name: img',
      '    injection_files:',
      `      - {path: ${injectDir}/secret.txt, content: "pw=$$SCONE::pw$$", permission: 0600}`,
      'secrets:',
      '  - {name: pw, kind: ascii, value: s3cr3t}',
      `security: {attestation: {${opts.tolerate ? '' : 'mode: none, '}tolerate: [${opts.tolerate ?? 'debug-mode'}]}}`,
      '',
    ].join('\n');
  const create = async (name: string, opts: Parameters<typeof session>[1]) => {
    const res = await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: session(name, opts) });
    assert.equal(res.status, 201, res.body);
  };
  /** `src` encrypted into `enc` by `veil fspf encrypt`, and a session `name` whose service runs `script` on it. */
  const createShielded = async (name: string, src: string, enc: string, script: string) => {
    const printed = await veil(['fspf', 'encrypt', src, enc], {});
    const [, tag, key] = /tag: ([0-9a-f]{32}) key: ([0-9a-f]{64})/.exec(printed.stdout)!;
    const text = session(name, { script }).replace(
      '    image_name: img',
      `    image_name: img\n    fspf_path: ${enc}/fs.fspf\n    fspf_key: ${key}\n    fspf_tag: ${tag}`,
    );
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: text })).status, 201);
  };
  const run = (configId: string, extra: string[] = [], hostEnv: NodeJS.ProcessEnv = {}) =>
    veil(['run', '--mode', 'debug', ...extra, '--', 'sh', 'host-arg-ignored'], {
      ...env,
      ...hostEnv,
      SCONE_CONFIG_ID: configId,
    });

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    me = await opensslIdentity(dir.path, 'me');
    measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    const host = await simulationHost(dir.path);
    hostId = host.id;
    env = {
      SCONE_CAS_ADDR: new URL(cas.url).host,
      VEIL_CAS_FINGERPRINT: cas.fingerprint,
      HOST_SECRET: 'leak',
      ...host.env,
    };
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it("gives the program exactly the policy's argv, environment, working directory and files", async () => {
    await create('ok', {
      script:
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a JS template
        'echo "argv:$0 $#"; echo "env:$GREETING $PW ${HOST_SECRET:-none}"; pwd; cat ' +
        injectDir +
        '/secret.txt; echo; stat -c %a ' +
        injectDir +
        '/secret.txt; exit 7',
    });
    const r = await run('ok/sh');
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stdout, /^argv:first-arg 0$/m);
    assert.match(r.stdout, /^env:hello s3cr3t none$/m);
    assert.ok(r.stdout.includes(`\n${dir.path}\n`));
    assert.match(r.stdout, /^pw=s3cr3t$/m);
    assert.match(r.stdout, /^600$/m);
    assert.ok(!existsSync(join(injectDir, 'secret.txt')), 'the injected file is not visible outside the namespace');
  });

  it('refuses a wrong measurement and starts nothing', async () => {
    await create('wrong', { mrenclave: 'ab'.repeat(32), script: 'echo STARTED' });
    const r = await run('wrong/sh');
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /STARTED/);
    assert.match(
      r.stderr,
      new RegExp(`Unexpected enclave measurement \\(MRENCLAVE, ${measurement}\\) - Expected ${'ab'.repeat(32)}`),
    );
    assert.match(r.stderr, /Note: Connecting to CAS at .* using service ID wrong\/sh/);
  });

  it('refuses when the session does not allow simulation evidence', async () => {
    await create('hw', { tolerate: 'outdated-tcb', script: 'echo STARTED' });
    const r = await run('hw/sh');
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /STARTED/);
    assert.match(r.stderr, /does not accept simulation evidence/);
  });

  it('refuses simulation from a host the session does not list, naming the id veil host id prints', async () => {
    await create('elsewhere', { script: 'echo STARTED', platforms: ['ab'.repeat(32)] });
    const r = await run('elsewhere/sh');
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /STARTED/);
    assert.match(r.stderr, new RegExp(`simulation evidence from host ${hostId}, which service 'sh' does not trust`));
    assert.match(r.stderr, /'veil host id' on that host prints it/);
    // Another host key (another machine) is refused by a session that lists this one.
    await create('here', { script: 'echo STARTED' });
    const other = await run('here/sh', [], { VEIL_HOST_KEY: join(dir.path, 'other-host', 'host-key.pem') });
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /ATTESTATION_PLATFORM|does not trust/);
    assert.equal((await run('here/sh')).code, 0);
  });

  it('refuses an import that is not exported, naming both sessions', async () => {
    const lib = 'name: lib\nsecrets:\n  - {name: token, kind: ascii, export: [{session: somebody-else}]}\n';
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: lib })).status, 201);
    const text = session('importer', { script: 'echo STARTED' }).replace(
      '  - {name: pw, kind: ascii, value: s3cr3t}',
      '  - {name: pw, import: {session: lib, secret: token}}',
    );
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: text })).status, 201);
    const r = await run('importer/sh');
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /STARTED/);
    // The attesting service is told the rule, not whether 'lib' exists (only readers of 'lib' learn why).
    assert.match(
      r.stderr,
      /session 'importer' cannot import secret 'token' from session 'lib': it does not exist there/,
    );
  });

  it('refuses an impostor CAS and an unverifiable one', async () => {
    const r = await run('ok/sh', [], { VEIL_CAS_FINGERPRINT: 'cd'.repeat(32) });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /RUNTIME_CAS_UNTRUSTED/);
    const none = await run('ok/sh', [], { VEIL_CAS_FINGERPRINT: '' });
    assert.match(none.stderr, /neither VEIL_CAS_FINGERPRINT nor VEIL_CAS_CA_FILE/);
    const down = await run('ok/sh', [], { SCONE_CAS_ADDR: '127.0.0.1:1' });
    assert.match(down.stderr, /RUNTIME_CAS_UNREACHABLE/);
  });

  it('decrypts a shielded tree for the program only, and refuses a tampered one naming the file', async () => {
    const src = join(dir.path, 'app-src');
    const enc = join(dir.path, 'app-enc');
    mkdirSync(src);
    writeFileSync(join(src, 'hello.sh'), 'echo "shielded code runs"\n');
    await createShielded('shield', src, enc, `. ${enc}/hello.sh`);
    const r = await run('shield/sh');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /shielded code runs/);
    assert.ok(!readdirSync(enc).some((f) => f === 'hello.sh'), 'no plaintext outside the namespace');

    const blob = readdirSync(enc).find((f) => f.endsWith('.enc'))!;
    const bytes = readFileSync(join(enc, blob));
    bytes[40] = bytes[40]! ^ 1;
    writeFileSync(join(enc, blob), bytes);
    const tampered = await run('shield/sh');
    assert.notEqual(tampered.code, 0);
    assert.doesNotMatch(tampered.stdout, /shielded code runs/);
    assert.match(tampered.stderr, /'hello\.sh' failed authentication/);
  });

  it('runs a shielded tree larger than the memory file systems of injection files, on large folios', async () => {
    const src = join(dir.path, 'big-src');
    const enc = join(dir.path, 'big-enc');
    mkdirSync(src);
    writeFileSync(join(src, 'data.bin'), randomBytes(80 * 1024 * 1024)); // more than the 64 MiB a tmpfs had
    writeFileSync(join(src, 'run.sh'), `wc -c < ${enc}/data.bin; grep " ${enc} " /proc/self/mountinfo\n`);
    await createShielded('bigshield', src, enc, `. ${enc}/run.sh`);
    const r = await run('bigshield/sh');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^83886080$/m, 'the whole file, decrypted');
    if (existsSync('/sys/kernel/mm/transparent_hugepage/shmem_enabled'))
      assert.match(r.stdout, /tmpfs .*huge=within_size/, 'the plaintext is written into large folios');
  });

  it('maps host names in the namespace only', async () => {
    await create('hosts', { script: 'getent hosts api' });
    const r = await run('hosts/sh', ['--host', 'api=127.0.0.9']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^127\.0\.0\.9\s+api$/m);
    assert.doesNotMatch(readFileSync('/etc/hosts', 'utf8'), /127\.0\.0\.9/);
  });

  it('forwards signals and passes on how the program ended', async () => {
    await create('sig', { script: 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.05; done' });
    const child = spawn(process.execPath, [VEIL_BIN, 'run', '--mode', 'debug', '--', 'sh'], {
      env: { ...process.env, ...env, SCONE_CONFIG_ID: 'sig/sh' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(
      () => out.includes('ready'),
      15_000,
      () => `program did not start: ${out}`,
    );
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 42);
    assert.match(out, /got-term/);
  });

  it('keeps the file it measured: the host cannot name another program for the policy', async () => {
    const r = await veil(['run', '--mode', 'debug', '--', 'openssl'], { ...env, SCONE_CONFIG_ID: 'ok/sh' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unexpected enclave measurement/);
  });
});
