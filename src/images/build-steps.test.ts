import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { keptChanges, parseDiff, runBuildSteps, type Change } from './build-steps.js';
import { buildNetwork, findEngine, type Engine, type Spawner } from './engine.js';
import type { ImageError } from './errors.js';
import { eachEntry } from './flatten.js';
import { assembleImage } from './image.js';
import { buildLayer } from './layer.js';

const refused = (code: string, pattern: RegExp) => (e: ImageError) => e.code === code && pattern.test(e.message);

describe('container engine discovery', () => {
  const lookup = (found: string[]) => (name: string) => (found.includes(name) ? `/usr/bin/${name}` : undefined);
  it('takes VEIL_CONTAINER_ENGINE, then podman, then docker on PATH', () => {
    assert.equal(findEngine({}, { lookup: lookup(['docker', 'podman']) })?.name, 'podman');
    assert.equal(findEngine({}, { lookup: lookup(['docker']) })?.name, 'docker');
    assert.equal(
      findEngine({ VEIL_CONTAINER_ENGINE: 'docker' }, { lookup: lookup(['docker', 'podman']) })?.name,
      'docker',
    );
    assert.equal(findEngine({}, { lookup: lookup([]) }), undefined);
    assert.equal(findEngine({ VEIL_CONTAINER_ENGINE: 'none' }, { lookup: lookup(['podman']) }), undefined);
  });
  it('takes the steps’ network from a closed set', () => {
    assert.equal(buildNetwork({}), 'default');
    assert.equal(buildNetwork({ VEIL_BUILD_NETWORK: 'none' }), 'none');
    for (const bad of ['bridge', 'container:x', '--privileged'])
      assert.throws(() => buildNetwork({ VEIL_BUILD_NETWORK: bad }), refused('IMAGE_ENGINE', /VEIL_BUILD_NETWORK/));
  });
  it('refuses an unknown engine, and a named one that is not on PATH', () => {
    assert.throws(
      () => findEngine({ VEIL_CONTAINER_ENGINE: 'sh' }, { lookup: lookup(['sh']) }),
      refused('IMAGE_ENGINE', /'sh'/),
    );
    assert.throws(
      () => findEngine({ VEIL_CONTAINER_ENGINE: 'podman' }, { lookup: lookup([]) }),
      refused('IMAGE_ENGINE', /podman, which is not on PATH/),
    );
  });
});

describe('the changes of build steps', () => {
  const changes = parseDiff('A /etc\nA /opt/x/f\nA /opt\nA /opt/x\nC /usr\nD /usr/bin/echo\nA /run/.containerenv\n');
  it('sorts them and leaves out what the engine makes', () => {
    assert.deepEqual(
      keptChanges(changes, ['/opt/veil']).map((c) => `${c.kind} ${c.path}`),
      ['A /opt', 'A /opt/x', 'A /opt/x/f', 'C /usr', 'D /usr/bin/echo'],
    );
    const etc: Change[] = [...changes, { kind: 'A', path: '/etc/app.conf' }];
    assert.ok(
      keptChanges(etc, []).some((c) => c.path === '/etc'),
      '/etc kept when a step wrote into it',
    );
  });
  it('refuses a change under Veil’s directories or the shielded pwd, naming it', () => {
    for (const [path, forbidden] of [
      ['/opt/veil/runtime/bin/node', '/opt/veil'],
      ['/app/cache', '/app'],
      ['/app', '/app'],
    ] as const)
      assert.throws(
        () => keptChanges([{ kind: 'A', path }], ['/opt/veil', forbidden]),
        refused('IMAGE_BUILD_CHANGES', new RegExp(`changed ${path}`)),
      );
    assert.equal(keptChanges([{ kind: 'A', path: '/application' }], ['/app']).length, 1);
  });
});

describe('running build steps (an engine stand-in)', async () => {
  const base = assembleImage(undefined, [await buildLayer([])], (c) => c, []);
  const exported = await buildLayer([
    { type: 'file', path: '/opt/x/f', mode: 0o640, data: Buffer.from('hi\n'), uid: 1000, gid: 1000 },
    { type: 'file', path: '/etc/hosts', mode: 0o644, data: Buffer.from('127.0.0.1 secret-host\n') },
    { type: 'file', path: '/usr/bin/sh', mode: 0o755, data: Buffer.from('shell') },
    { type: 'directory', path: '/tmp', mode: 0o1777 },
  ]);
  const inputs: Array<Buffer | undefined> = [];
  const engine = (start: { code: number | null; stderr: string }, calls: string[][]): Engine => {
    const spawn: Spawner = async (_file, args, opts) => {
      calls.push(args);
      if (opts.input) inputs.push(opts.input);
      if (args[0] === 'load') return { code: 0, stdout: 'Loaded image: localhost/veil-build/base:x\n', stderr: '' };
      if (args[0] === 'create') return { code: 0, stdout: 'c0ffee\n', stderr: '' };
      if (args[0] === 'start') return { code: start.code, stdout: 'step output\n', stderr: start.stderr };
      if (args[0] === 'diff')
        return { code: 0, stdout: 'A /opt\nA /opt/x\nA /opt/x/f\nA /etc\nD /tmp/old\n', stderr: '' };
      if (args[0] === 'export') writeFileSync(args[2]!, gunzipSync(exported.data));
      return { code: 0, stdout: '', stderr: '' };
    };
    return { name: 'podman', path: '/usr/bin/podman', spawn };
  };
  const requirements = { name: "req's.txt", content: Buffer.from('flask\n') };
  const steps = { run: ['echo hi > /opt/x/f'], requirements, forbidden: ['/opt/veil'] };

  it('turns the changes into a layer without timestamps or the engine’s files, then removes what it made', async () => {
    const calls: string[][] = [];
    const layer = await runBuildSteps(base, steps, engine({ code: 0, stderr: '' }, calls), {
      env: {},
      network: 'none',
    });
    const names: string[] = [];
    await eachEntry(layer.data, (h) => {
      names.push(`${h.name} ${(h.mode ?? 0).toString(8)} ${h.uid}`);
      return false;
    });
    assert.deepEqual(names, ['opt/ 755 0', 'opt/x/ 755 0', 'opt/x/f 640 1000', 'tmp/ 1777 0', 'tmp/.wh.old 644 0']);
    const create = calls.find((c) => c[0] === 'create')!;
    assert.deepEqual(create.slice(1, 8), [
      '--network',
      'none',
      '--entrypoint',
      '/bin/sh',
      '-e',
      'SOURCE_DATE_EPOCH=0',
      '-i',
    ]);
    assert.equal(create.at(-2), 'python3 -m pip install --no-cache-dir -r /dev/stdin');
    assert.deepEqual(
      calls.find((c) => c[0] === 'start'),
      ['start', '-a', '-i', 'c0ffee'],
    );
    assert.equal(inputs.at(-1)?.toString(), 'flask\n', 'the requirements reach the container on stdin only');
    assert.deepEqual(calls.slice(-2), [
      ['rm', '-f', 'c0ffee'],
      ['rmi', 'localhost/veil-build/base:x'],
    ]);
  });

  it('mounts nothing of the host; only the first step (requirements) can read stdin', async () => {
    const calls: string[][] = [];
    await runBuildSteps(base, steps, engine({ code: 0, stderr: '' }, calls), { env: {}, network: 'none' });
    const create = calls.find((c) => c[0] === 'create')!;
    const mounts = create.filter((a) => /^(-v|--volume|--mount|--volumes-from)(=|$)/.test(a));
    assert.deepEqual(mounts, [], create.join(' '));
    // The driver itself, in this machine's sh: the requirements step reads one line, build.run tries the rest.
    const driver = create.slice(create.indexOf('-c') + 1, create.indexOf('veil-build'));
    const run = (stepsIn: string[]) =>
      execFileSync('/bin/sh', ['-c', driver[0]!, 'veil-build', 'n', ...stepsIn], { input: 'pkg\nsecret\n' });
    assert.equal(run(['read -r l; echo "$l"', 'cat; echo end']).toString(), 'pkg\nend\n');
  });

  it('refuses a layer that holds the plaintext of a copied file; no stdin without requirements', async () => {
    const calls: string[][] = [];
    const plaintext = new Map([[createHash('sha256').update('hi\n').digest('hex'), 'app/secret.py']]);
    await assert.rejects(
      runBuildSteps(base, { ...steps, plaintext }, engine({ code: 0, stderr: '' }, calls), {
        env: {},
        network: 'none',
      }),
      refused('IMAGE_BUILD_CHANGES', /wrote \/opt\/x\/f, which holds the plaintext of build\.copy's app\/secret\.py/),
    );
    const only = { ...steps, requirements: undefined };
    await runBuildSteps(base, only, engine({ code: 0, stderr: '' }, calls), { env: {}, network: 'default' });
    const create = calls.filter((c) => c[0] === 'create').at(-1)!;
    assert.ok(!create.includes('-i') && !create.includes('--network'), create.join(' '));
    assert.deepEqual(calls.filter((c) => c[0] === 'start').at(-1), ['start', '-a', 'c0ffee']);
  });

  it('names the step that failed, by the marker with this build’s nonce only', async () => {
    const calls: string[][] = [];
    const failing = (stderr: (nonce: string) => string) =>
      engine(
        {
          code: 3,
          get stderr() {
            const create = calls.find((c) => c[0] === 'create')!;
            return stderr(create[create.indexOf('veil-build') + 1]!);
          },
        },
        calls,
      );
    await assert.rejects(
      runBuildSteps(
        base,
        steps,
        failing((n) => `boom\nveil-build-step ${n} 1 3\n`),
        { env: {}, network: 'none' },
      ),
      refused('IMAGE_BUILD_STEP', /^build\.run\[0\] exited with 3: "echo hi > \/opt\/x\/f"\nstep output\nboom$/),
    );
    assert.deepEqual(calls.slice(-2), [
      ['rm', '-f', 'c0ffee'],
      ['rmi', 'localhost/veil-build/base:x'],
    ]);
    await assert.rejects(
      runBuildSteps(
        base,
        steps,
        failing(() => 'veil-build-step 0000 1 3\n'),
        { env: {}, network: 'none' },
      ),
      refused('IMAGE_ENGINE', /could not run the build container/),
    );
    await assert.rejects(
      runBuildSteps(base, steps, engine({ code: null, stderr: '' }, calls), { env: {}, network: 'none' }),
      refused('IMAGE_BUILD_STEP', /did not end within 60 min/),
    );
    assert.deepEqual(calls.at(-2), ['rm', '-f', 'c0ffee'], 'a container killed at the timeout is removed');
  });
});
