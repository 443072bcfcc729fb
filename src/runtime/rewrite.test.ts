import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { RuntimeError } from './errors.js';
import { replaceFile } from './rewrite.js';

const REPLACEMENTS = 200;
const dirs: string[] = [];
const temp = (root = tmpdir()) => {
  const dir = mkdtempSync(join(root, 'veil-rewrite-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A reader on another thread: reads the file as fast as it can and counts reads that are not one whole version. */
const READER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const stop = new Int32Array(workerData.stop);
let reads = 0, partial = 0;
while (Atomics.load(stop, 0) === 0) {
  let data;
  try { data = readFileSync(workerData.path); } catch { partial++; continue; }
  reads++;
  if (data.length !== workerData.size || !data.equals(Buffer.alloc(data.length, data[0]))) partial++;
}
parentPort.postMessage({ reads, partial });
`;

describe('replaceFile: atomic, never through a link, only on memory when asked', () => {
  it('a reader never sees a partial file while it is replaced again and again', async () => {
    const size = 1024 * 1024;
    const path = join(temp(), 'cert.pem');
    writeFileSync(path, Buffer.alloc(size, 0x41));
    const stop = new SharedArrayBuffer(4);
    const worker = new Worker(READER, { eval: true, workerData: { path, size, stop } });
    const result = new Promise<{ reads: number; partial: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 20)); // the reader is reading before the first replacement
    for (let i = 0; i < REPLACEMENTS; i++) {
      replaceFile(path, Buffer.alloc(size, 0x42 + (i % 20)), 0o600, false);
      await new Promise((r) => setImmediate(r));
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const { reads, partial } = await result;
    console.log(`# reads ${reads}, partial ${partial}, replacements ${REPLACEMENTS}`);
    assert.ok(reads > 0);
    assert.equal(partial, 0);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(path, '..')), ['cert.pem'], 'no temporary file is left');
  });

  it('a link someone put in place of the file is replaced, not followed', () => {
    const dir = temp();
    const victim = join(temp(), 'victim');
    writeFileSync(victim, 'untouched');
    const path = join(dir, 'cert.pem');
    symlinkSync(victim, path);
    replaceFile(path, Buffer.from('renewed'), 0o644, false);
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
    assert.ok(lstatSync(path).isFile());
    assert.equal(readFileSync(path, 'utf8'), 'renewed');
  });

  it("a rename that fails (a directory in the file's place) leaves no temporary file with the content", () => {
    const dir = temp();
    mkdirSync(join(dir, 'cert.pem', 'inside'), { recursive: true });
    assert.throws(
      () => replaceFile(join(dir, 'cert.pem'), Buffer.from('secret'), 0o600, false),
      /EISDIR|ENOTEMPTY|EEXIST/,
    );
    assert.deepEqual(readdirSync(dir), ['cert.pem'], 'only the directory that was there');
  });

  it('memoryOnly: a directory on a tmpfs is written, one on a disk is refused and left alone', (t) => {
    if (statfsSync(process.cwd()).type === 0x01021994) return t.skip('the working directory is on a tmpfs');
    const disk = temp(process.cwd());
    const path = join(disk, 'key.pem');
    writeFileSync(path, 'old');
    assert.throws(
      () => replaceFile(path, Buffer.from('secret'), 0o600, true),
      (err: unknown) => err instanceof RuntimeError && err.code === 'RUNTIME_NAMESPACE' && !/secret/.test(err.message),
    );
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(disk), ['key.pem']);
    let shm: string;
    try {
      shm = temp('/dev/shm');
    } catch {
      return t.skip('no /dev/shm here');
    }
    replaceFile(join(shm, 'key.pem'), Buffer.from('secret'), 0o600, true);
    assert.equal(readFileSync(join(shm, 'key.pem'), 'utf8'), 'secret');
  });
});
