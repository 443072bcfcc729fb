import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { META_FILE, type Threads, decryptTree, encryptTree } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-fspf-det-'));
after(() => rmSync(root, { recursive: true, force: true }));
const key = randomBytes(32);
// Every test runs twice: on the main thread alone, and with every chunk left to worker threads (from: 0 takes
// them on any tree; mainThread: false keeps this thread from deciphering while they start).
const MODES: Array<{ name: string; threads: Threads }> = [
  { name: 'main thread', threads: { from: Number.POSITIVE_INFINITY } },
  { name: 'worker threads', threads: { from: 0, max: 2, mainThread: false } },
];

function source(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}
const bytes = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
const blobs = (dir: string) => readdirSync(dir).filter((f) => f !== META_FILE);

describe('file-system shield: deterministic encryption', () => {
  for (const { name, threads } of MODES)
    it(`gives the same bytes for the same key and tree, which decrypt (${name})`, async () => {
      const src = source(`a-${name}`, { 'main.py': 'print(1)\n', 'pkg/x.py': 'X = 2\n' });
      const one = encryptTree(src, join(root, `enc1-${name}`), key, { deterministic: true });
      const two = encryptTree(src, join(root, `enc2-${name}`), key, { deterministic: true });
      assert.equal(one.tag, two.tag);
      assert.deepEqual(bytes(join(root, `enc1-${name}`)), bytes(join(root, `enc2-${name}`)));
      await decryptTree(join(root, `enc1-${name}`), join(root, `plain-${name}`), one, { threads });
      assert.equal(readFileSync(join(root, `plain-${name}`, 'pkg', 'x.py'), 'utf8'), 'X = 2\n');
    });

  it('never reuses a blob (its file key and nonces) for other content at the same path', () => {
    const a = encryptTree(source('b', { 'main.py': 'print(1)\n' }), join(root, 'enc3'), key, { deterministic: true });
    const b = encryptTree(source('c', { 'main.py': 'print(2)\n' }), join(root, 'enc4'), key, { deterministic: true });
    assert.notEqual(a.tag, b.tag);
    assert.notDeepEqual(blobs(join(root, 'enc3')), blobs(join(root, 'enc4')));
    const meta = (dir: string) =>
      readFileSync(join(root, dir, META_FILE))
        .subarray(0, 12)
        .toString('hex');
    assert.notEqual(meta('enc3'), meta('enc4'), 'metadata nonces differ');
  });

  it('draws names at random unless asked', () => {
    const src = source('r', { 'main.py': 'print(1)\n' });
    encryptTree(src, join(root, 'enc5'), key);
    encryptTree(src, join(root, 'enc6'), key);
    assert.notDeepEqual(blobs(join(root, 'enc5')), blobs(join(root, 'enc6')));
  });
});
