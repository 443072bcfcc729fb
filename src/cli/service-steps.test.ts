import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseServiceManifest, type ManifestError } from '../manifests/index.js';
import type { Engine } from '../images/engine.js';
import { serviceSteps } from './service-steps.js';
import { capture } from './test-io.js';

const root = mkdtempSync(join(tmpdir(), 'veil-service-steps-'));
after(() => rmSync(root, { recursive: true, force: true }));
const app = join(root, 'project', 'app');
mkdirSync(app, { recursive: true });
writeFileSync(join(root, 'project', 'requirements.txt'), 'flask\n');
writeFileSync(join(app, 'requirements.txt'), 'flask\n');
writeFileSync(join(app, 'main.py'), 'print(1)\n');

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
  it('mounts the requirements file’s own directory, and knows the copied plaintext', () => {
    const { steps, engine } = serviceSteps(parsed('requirements.txt'), capture(), app, stand);
    assert.equal(engine?.name, 'podman');
    assert.equal(steps?.context, app);
    assert.equal(steps?.requirements, 'requirements.txt');
    assert.deepEqual([...(steps?.plaintext?.values() ?? [])], ['main.py']);
  });

  it('refuses a requirements file outside the working directory and the manifest’s', () => {
    for (const bad of ['../requirements.txt', '/etc/passwd', 'missing.txt'])
      assert.throws(
        () => serviceSteps(parsed(bad), capture(), app, stand),
        (e: ManifestError) => e.code === 'MANIFEST_REFERENCE' && e.message.includes('build.requirements'),
        bad,
      );
  });

  it('warns, and runs nothing, without an engine', () => {
    const io = capture({ VEIL_CONTAINER_ENGINE: 'none' });
    assert.deepEqual(serviceSteps(parsed('requirements.txt'), io, app), {});
    assert.match(io.stderr, /\[VEIL\|WARNING\] build\.run and requirements are not executed: no container engine/);
  });
});
