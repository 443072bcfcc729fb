import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decryptTree } from '../fsshield/index.js';
import { loadShieldKey } from './bundle.js';
import { buildBundle, parseServiceManifest } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-reproducible-'));
after(() => rmSync(root, { recursive: true, force: true }));

const manifest = `apiVersion: scone/5.8
kind: genservice
environment: {}
secrets:
  global:
    - {name: pw, kind: ascii, value: "explicit"}
build: {name: app, kind: python, to: repo/app:1, pwd: /app, command: python3 /app/main.py, copy: [main.py, lib]}
`;

/** A source tree as a checkout leaves it: its own mtimes and the modes of its umask. */
function checkout(name: string, umask: number, mtime: number, main = 'print("hello")\n'): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(join(dir, 'main.py'), main);
  writeFileSync(join(dir, 'lib', 'util.py'), 'X = 1\n');
  writeFileSync(join(dir, 'lib', 'run.sh'), '#!/bin/sh\n');
  writeFileSync(join(dir, 'service.yaml'), manifest);
  chmodSync(join(dir, 'main.py'), 0o666 & ~umask);
  chmodSync(join(dir, 'lib', 'util.py'), 0o666 & ~umask);
  chmodSync(join(dir, 'lib', 'run.sh'), 0o777 & ~umask);
  for (const f of ['main.py', 'lib/util.py', 'lib/run.sh']) utimesSync(join(dir, f), mtime, mtime);
  return dir;
}

function apply(src: string, target: string, keysDir: string) {
  const parsed = parseServiceManifest(manifest, join(src, 'service.yaml'), src, { cwd: src });
  return buildBundle(parsed, { target: join(root, target), keysDir: join(root, keysDir) });
}

/** Every file of the encrypted tree, by name, with its bytes. */
function tree(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString('hex')]));
}

describe('reproducible bundles', () => {
  it('gives the same encrypted tree and bundle from two checkouts into two fresh target directories', () => {
    const a = apply(checkout('src-a', 0o022, 1_000_000), 'target-a', 'home/keys');
    const b = apply(checkout('src-b', 0o002, 2_000_000), 'target-b', 'home/keys');
    assert.equal(a.bundle.shield!.tag, b.bundle.shield!.tag);
    assert.deepEqual(tree(join(a.dir, 'app')), tree(join(b.dir, 'app')));
    assert.equal(readFileSync(join(a.dir, 'bundle.json'), 'utf8'), readFileSync(join(b.dir, 'bundle.json'), 'utf8'));
    const files = readdirSync(join(root, 'home/keys'));
    assert.equal(files.filter((f) => f.startsWith('values-')).length, 1, files.join(' '));
    assert.equal(statSync(join(root, 'home/keys', 'build-secret')).mode & 0o777, 0o600);
  });

  it('decrypts to the files with modes as git keeps them (0644, 0755), whatever the umask', async () => {
    const { bundle, dir } = apply(checkout('src-c', 0o077, 3_000_000), 'target-c', 'home/keys');
    const out = join(root, 'plain-c');
    const key = loadShieldKey(join(root, 'home/keys'), bundle.shield!.tag, 'app');
    await decryptTree(join(dir, 'app'), out, { key, tag: bundle.shield!.tag });
    assert.equal(statSync(join(out, 'main.py')).mode & 0o777, 0o644);
    assert.equal(statSync(join(out, 'lib', 'run.sh')).mode & 0o777, 0o755);
  });

  it('gives changed files a new key and tag, and another key directory other keys', () => {
    const first = apply(checkout('src-d', 0o022, 1), 'target-d', 'home/keys').bundle.shield!.tag;
    const changed = apply(checkout('src-e', 0o022, 1, 'print("other")\n'), 'target-e', 'home/keys').bundle.shield!;
    assert.notEqual(changed.tag, first);
    const elsewhere = apply(checkout('src-f', 0o022, 1), 'target-f', 'other-home/keys').bundle.shield!;
    assert.notEqual(elsewhere.tag, first);
    const keys = (home: string, tag: string) => loadShieldKey(join(root, home), tag, 'app');
    assert.notEqual(keys('other-home/keys', elsewhere.tag), keys('home/keys', first));
  });
});
