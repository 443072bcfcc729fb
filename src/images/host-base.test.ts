import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ImageError } from './errors.js';
import { hostBaseImage, hostEntries, parseLdd, sharedLibraries } from './host-base.js';
import { indexLayers, programInImage, resolveInImage } from './image-files.js';

const LDD = `	linux-vdso.so.1 (0x00007ffd)
	libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f74)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f75)
	/lib64/ld-linux-x86-64.so.2 (0x00007f76)
`;

describe('host base images', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-host-base-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads ldd's libraries by the names the loader finds them at, loader included, vdso left out", () => {
    assert.deepEqual(parseLdd(LDD, '/usr/bin/x'), [
      '/lib/x86_64-linux-gnu/libssl.so.3',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('refuses a library the host lacks instead of building a base that cannot start', () => {
    assert.throws(
      () => parseLdd('\tlibgone.so.1 => not found\n', '/usr/bin/x'),
      (e: unknown) => e instanceof ImageError && e.code === 'IMAGE_HOST_FILE' && /libgone\.so\.1/.test(e.message),
    );
  });

  it('keeps every link on the way to a file as a link, and the file at its real path', async () => {
    mkdirSync(join(dir, 'usr', 'lib'), { recursive: true });
    writeFileSync(join(dir, 'usr', 'lib', 'data.txt'), 'x');
    symlinkSync('usr/lib', join(dir, 'lib'));
    symlinkSync('data.txt', join(dir, 'usr', 'lib', 'alias.txt'));
    const entries = await hostEntries([join(dir, 'lib', 'alias.txt')]);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.deepEqual(byPath.get(join(dir, 'lib')), { type: 'symlink', path: join(dir, 'lib'), target: 'usr/lib' });
    assert.equal(byPath.get(join(dir, 'usr', 'lib', 'alias.txt'))?.type, 'symlink');
    assert.equal(byPath.get(join(dir, 'usr', 'lib', 'data.txt'))?.type, 'file');
    assert.equal(entries.length, 3);
  });

  it('takes directories whole, except what is excluded, and survives a link back to its parent', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, '__pycache__'), { recursive: true });
    writeFileSync(join(tree, 'a.py'), 'a');
    writeFileSync(join(tree, '__pycache__', 'a.pyc'), 'c');
    symlinkSync('.', join(tree, 'self'));
    const paths = (await hostEntries([tree], (p) => p.endsWith('__pycache__'))).map((e) => e.path);
    assert.deepEqual(paths, [tree, join(tree, 'a.py'), join(tree, 'self')]);
  });

  it('refuses a loop of symbolic links instead of following it forever', async () => {
    symlinkSync('loop-b', join(dir, 'loop-a'));
    symlinkSync('loop-a', join(dir, 'loop-b'));
    await assert.rejects(hostEntries([join(dir, 'loop-a')]), (e: unknown) => {
      return e instanceof ImageError && e.code === 'IMAGE_HOST_FILE' && /more than 40 symbolic links/.test(e.message);
    });
  });

  it('refuses more bytes than it holds in memory, naming the file that crossed the limit', async () => {
    mkdirSync(join(dir, 'big'));
    writeFileSync(join(dir, 'big', 'one'), Buffer.alloc(8));
    writeFileSync(join(dir, 'big', 'two'), Buffer.alloc(8));
    assert.equal((await hostEntries([join(dir, 'big')], undefined, 16)).length, 3);
    await assert.rejects(hostEntries([join(dir, 'big')], undefined, 15), /exceed 15 bytes at .*big\/two/);
  });

  it('refuses a relative path and a missing file, naming them', async () => {
    await assert.rejects(hostEntries(['usr/bin/x']), /usr\/bin\/x is not an absolute path/);
    await assert.rejects(hostEntries([join(dir, 'missing')]), (e: unknown) => {
      return e instanceof ImageError && e.code === 'IMAGE_HOST_FILE' && e.message.includes(join(dir, 'missing'));
    });
  });

  it("adds a dynamic program's loader and libraries, so the image resolves them as the kernel would", async () => {
    const libs = await sharedLibraries('/usr/bin/openssl');
    assert.ok(libs.some((l) => /libcrypto\.so/.test(l)));
    const image = await hostBaseImage({ paths: ['/usr/bin/openssl'], env: ['PATH=/usr/bin'] });
    const index = await indexLayers(image.layers);
    for (const lib of libs) assert.equal(index.get(resolveInImage(index, lib)!)?.type, 'file', lib);
    const program = await programInImage(image.layers, 'openssl', '/usr/bin');
    assert.equal(program.path, '/usr/bin/openssl');
    assert.deepEqual(image.config.config.Env, ['PATH=/usr/bin']);
  });

  it('treats a file that is not a dynamic executable as linking nothing', async () => {
    writeFileSync(join(dir, 'plain.txt'), 'not elf');
    assert.deepEqual(await sharedLibraries(join(dir, 'plain.txt')), []);
  });
});
