import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipLayer } from './gunzip.js';
import { extract } from 'tar-stream';
import type { LayerEntry } from './layer.js';

/**
 * The merged file tree of an image's layers, with contents: whiteouts applied, hard links resolved to
 * copies. Sconifying squashes an image into one layer from this, because hiding a directory with a
 * whiteout would leave its plaintext in the lower layers that are pushed along.
 */
export async function mergedTree(layers: Array<{ data: Buffer }>): Promise<Map<string, LayerEntry>> {
  const tree = new Map<string, LayerEntry>();
  for (const { data } of layers) {
    const items = (await entries(data)).map((item) => ({ ...item, path: posix.normalize(`/${item.header.name}`).replace(/\/+$/, '') || '/' }));
    // Whiteouts remove from the layers below, never from their own layer: apply them first.
    for (const { path } of items) {
      const base = posix.basename(path);
      if (base === '.wh..wh..opq') removeUnder(tree, posix.dirname(path), false);
      else if (base.startsWith('.wh.')) removeUnder(tree, posix.join(posix.dirname(path), base.slice(4)), true);
    }
    for (const { header, body, path } of items) {
      if (posix.basename(path).startsWith('.wh.')) continue;
      const owner = { uid: header.uid ?? 0, gid: header.gid ?? 0 };
      const mode = (header.mode ?? 0o644) & 0o7777;
      if (header.type !== 'directory') removeUnder(tree, path, false); // a file replacing a directory
      if (header.type === 'directory') tree.set(path, { type: 'directory', path, mode, ...owner });
      else if (header.type === 'symlink') tree.set(path, { type: 'symlink', path, target: header.linkname ?? '', ...owner });
      else if (header.type === 'link') {
        const linkOf = posix.normalize(`/${header.linkname ?? ''}`);
        const target = tree.get(linkOf);
        if (target?.type === 'file') tree.set(path, { ...target, path, linkOf: target.linkOf ?? linkOf });
      } else if (header.type === 'file' || header.type === 'contiguous-file') tree.set(path, { type: 'file', path, mode, data: body, ...owner });
    }
  }
  return tree;
}

function removeUnder(tree: Map<string, LayerEntry>, path: string, itself: boolean): void {
  for (const key of [...tree.keys()]) if ((itself && key === path) || key.startsWith(`${path}/`)) tree.delete(key);
}

async function entries(layer: Buffer): Promise<Array<{ header: { name: string; type?: string | null; linkname?: string | null; mode?: number; uid?: number; gid?: number }; body: Buffer }>> {
  const tar = layer[0] === 0x1f && layer[1] === 0x8b ? gunzipLayer(layer) : layer;
  const out: Array<{ header: { name: string; type?: string | null; linkname?: string | null; mode?: number; uid?: number; gid?: number }; body: Buffer }> = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        out.push({ header, body: Buffer.concat(chunks) });
        next();
      });
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  Readable.from([tar]).pipe(ex);
  await done;
  return out;
}
