import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseServiceManifest, type ManifestError } from '../manifests/index.js';
import type { Engine } from '../images/engine.js';
import { includedFile, REQUIREMENTS_MAX_BYTES, serviceSteps } from './service-steps.js';
import { capture } from './test-io.js';

const root = mkdtempSync(join(tmpdir(), 'veil-service-steps-'));
after(() => rmSync(root, { recursive: true, force: true }));
const app = join(root, 'project', 'app');
mkdirSync(app, { recursive: true });
writeFileSync(join(root, 'project', 'requirements.txt'), 'flask\n');
writeFileSync(join(app, 'requirements.txt'), 'flask\n');
writeFileSync(join(app, 'main.py'), 'print(1)\n');
writeFileSync(join(app, 'nested.txt'), '# web\nflask \\\n  ==3.0\n-r  base.txt\n');
writeFileSync(join(app, 'big.txt'), 'x'.repeat(REQUIREMENTS_MAX_BYTES + 1));
mkdirSync(join(app, 'conf'));
writeFileSync(join(app, '.npmrc'), '//registry.example/:_authToken=npm_TOKEN\n');
writeFileSync(join(app, 'conf', '.env'), 'TOKEN=x\n');
mkdirSync(join(app, '.veil', 'shield-keys'), { recursive: true });
writeFileSync(join(app, '.veil', 'shield-keys', 'build-secret'), 'aa'.repeat(32));
symlinkSync(join(root, 'project', 'requirements.txt'), join(app, 'outside.txt'));

const parsed = (requirements: string) =>
  parseServiceManifest(
    `apiVersion: scone/5.8
kind: genservice
environment: {}
build: {name: a, kind: python, to: r/a:1, pwd: /app, command: python3 main.py, copy: [main.py],
        requirements: "${requirements}", run: ["true"]}
`,
    join(app, 'service.yaml'),
    app,
    { cwd: app },
  );
const stand = (): Engine => ({
  name: 'podman',
  path: '/usr/bin/podman',
  spawn: async () => ({ code: 0, stdout: '', stderr: '' }),
});

describe('the build steps of a service', () => {
  it('takes the requirements file’s bytes only, and knows the copied plaintext', () => {
    const { steps, engine } = serviceSteps(parsed('requirements.txt'), capture(), app, stand);
    assert.equal(engine?.name, 'podman');
    assert.deepEqual(Object.keys(steps ?? {}).sort(), ['plaintext', 'requirements', 'run']);
    assert.equal(steps?.requirements?.name, 'requirements.txt');
    assert.equal(steps?.requirements?.content.toString(), 'flask\n');
    assert.deepEqual([...(steps?.plaintext?.values() ?? [])], ['main.py']);
  });

  it('refuses a requirements file outside the working directory and the manifest’s', () => {
    const why = {
      '../requirements.txt': /must be relative/,
      '/etc/passwd': /must be relative/,
      'missing.txt': /not a file/,
    };
    for (const [bad, message] of Object.entries(why))
      assert.throws(
        () => serviceSteps(parsed(bad), capture(), app, stand),
        (e: ManifestError) =>
          e.code === 'MANIFEST_REFERENCE' && e.message.includes('build.requirements') && message.test(e.message),
        bad,
      );
  });

  it('refuses a file that includes others, lies in VEIL_HOME or the target, links outside, or is too large', () => {
    const cases = [
      ['nested.txt', /includes another file \(-r {2}base\.txt\)/],
      ['.veil/shield-keys/build-secret', /lies in VEIL_HOME or the target directory/],
      ['outside.txt', /is a link to .*, outside/],
      ['big.txt', /larger than 1024 KiB/],
      ['.npmrc', /is a hidden file/],
      ['conf/.env', /is a hidden file/],
    ] as const;
    for (const [bad, message] of cases)
      assert.throws(
        () => serviceSteps(parsed(bad), capture(), app, stand, [join(app, '.veil'), join(app, 'target')]),
        (e: ManifestError) => e.code === 'MANIFEST_REFERENCE' && message.test(e.message),
        bad,
      );
  });

  it('finds -r/-c includes as pip reads them', () => {
    for (const text of [
      '-r a.txt',
      '-rboth.txt',
      '  -c c.txt # pins',
      '--requirement=a',
      '--constr x',
      '-r \\\n b.txt',
    ])
      assert.ok(includedFile(`flask\n${text}\n`), text);
    for (const text of ['--require-hashes', '# -r a.txt', 'flask[-r]', '--index-url https://x/-r', '--co x'])
      assert.equal(includedFile(`${text}\nflask\n`), undefined, text);
  });

  it('warns, and runs nothing, without an engine', () => {
    const io = capture({ VEIL_CONTAINER_ENGINE: 'none' });
    assert.deepEqual(serviceSteps(parsed('requirements.txt'), io, app), {});
    assert.match(io.stderr, /\[VEIL\|WARNING\] build\.run and requirements are not executed: no container engine/);
  });
});
