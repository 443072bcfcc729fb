import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { pack } from 'tar-stream';
import { mergedTree } from './flatten.js';
import { indexLayers, programInImage, resolveInImage } from './image-files.js';
import { buildLayer } from './layer.js';
import { parseReference, registryUrl } from './reference.js';

/** A layer written by someone else's tool, with whatever names it likes. */
async function rawLayer(
  entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory' | 'link'; data?: string; linkname?: string }>,
): Promise<{ data: Buffer }> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve) => archive.on('end', () => resolve()));
  for (const e of entries)
    archive.entry(
      { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) },
      e.data ?? '',
    );
  archive.finalize();
  await done;
  return { data: gzipSync(Buffer.concat(chunks)) };
}

describe('image layers', () => {
  it('are byte-for-byte reproducible', async () => {
    const entries = [
      { type: 'file' as const, path: '/app/b.txt', mode: 0o644, data: Buffer.from('b') },
      { type: 'file' as const, path: '/app/a.txt', mode: 0o600, data: Buffer.from('a') },
    ];
    const [one, two] = [await buildLayer(entries), await buildLayer([...entries].reverse())];
    assert.equal(one.descriptor.digest, two.descriptor.digest);
    assert.equal(one.diffId, two.diffId);
  });

  it('apply whiteouts and keep hostile names inside the root', async () => {
    const lower = await rawLayer([
      { name: 'app/secret.txt', data: 's' },
      { name: 'app/keep.txt', data: 'k' },
      { name: '../../etc/evil', data: 'x' },
    ]);
    const upper = await rawLayer([{ name: 'app/.wh.secret.txt' }]);
    const tree = await mergedTree([lower, upper]);
    assert.deepEqual([...tree.keys()].sort(), ['/app/keep.txt', '/etc/evil']);
    const own = await mergedTree([await rawLayer([{ name: 'x/new.txt', data: 'n' }, { name: 'x/.wh..wh..opq' }])]);
    assert.deepEqual([...own.keys()], ['/x/new.txt'], 'a whiteout never removes what its own layer adds');
  });

  it('are merged by one walk, for squashing and for finding programs alike', async () => {
    const lower = await rawLayer([
      { name: 'usr/bin/tool', data: 'old' },
      { name: 'etc/x', data: 'x' },
      { name: 'etc/y', data: 'y' },
    ]);
    const upper = await rawLayer([
      { name: 'etc/x', type: 'link', linkname: 'nowhere' },
      { name: 'etc/.wh.y' },
      { name: 'usr/bin/tool', data: 'new' },
    ]);
    const tree = await mergedTree([lower, upper]);
    assert.deepEqual([...tree.keys()].sort(), ['/usr/bin/tool'], 'a link to nothing replaces the lower file');
    const found = await programInImage([lower, upper], 'tool', '/usr/bin');
    assert.deepEqual(found, { path: '/usr/bin/tool', data: Buffer.from('new') });
    const index = await indexLayers([lower, upper]);
    assert.deepEqual([...index.keys()].sort(), ['/usr', '/usr/bin', '/usr/bin/tool']);
    const twice = await rawLayer([
      { name: 'bin/run', data: 'first' },
      { name: 'bin/run', data: 'second' },
    ]);
    const kept = (await mergedTree([twice])).get('/bin/run');
    assert.deepEqual(await programInImage([twice], 'run', '/bin'), { path: '/bin/run', data: Buffer.from('second') });
    assert.equal(kept?.type === 'file' && kept.data.toString(), 'second', 'the later entry wins in both');
  });

  it('find a program through symbolic links, as the kernel would in the container', async () => {
    const layer = await rawLayer([
      { name: 'usr/bin/python3.11', data: 'ELF' },
      { name: 'usr/bin/python3', type: 'symlink', linkname: 'python3.11' },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
    ]);
    const index = await indexLayers([layer]);
    assert.equal(resolveInImage(index, '/bin/python3'), '/usr/bin/python3.11');
    assert.deepEqual(await programInImage([layer], 'python3', '/usr/local/bin:/bin'), {
      path: '/usr/bin/python3.11',
      data: Buffer.from('ELF'),
    });
    await assert.rejects(programInImage([layer], 'ruby', '/bin'), { code: 'IMAGE_PROGRAM' });
    const linked = await rawLayer([
      { name: 'usr/bin/python3.11', data: 'ELF' },
      { name: 'usr/bin/python3', type: 'link', linkname: 'usr/bin/python3.11' },
    ]);
    assert.deepEqual(
      await programInImage([linked], 'python3', '/usr/bin'),
      { path: '/usr/bin/python3', data: Buffer.from('ELF') },
      'hard links too',
    );
  });
});

describe('image references', () => {
  it('are read as Docker reads them', () => {
    assert.deepEqual(parseReference('python:3.11-slim'), {
      registry: 'docker.io',
      repository: 'library/python',
      tag: '3.11-slim',
    });
    assert.deepEqual(parseReference('127.0.0.1:5000/app/api:1'), {
      registry: '127.0.0.1:5000',
      repository: 'app/api',
      tag: '1',
    });
    assert.deepEqual(parseReference('scontain/sconecli'), {
      registry: 'docker.io',
      repository: 'scontain/sconecli',
      tag: 'latest',
    });
    assert.equal(parseReference(`localhost/x@sha256:${'a'.repeat(64)}`).digest, `sha256:${'a'.repeat(64)}`);
    assert.throws(() => parseReference('Bad Name'), { code: 'IMAGE_REFERENCE' });
    assert.equal(registryUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
    assert.equal(registryUrl('registry.example'), 'https://registry.example');
  });
});
