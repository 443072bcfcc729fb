import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipLayer } from './gunzip.js';
import { extract } from 'tar-stream';
import { ImageError } from './errors.js';

/** `source`: for a hard link, the path whose entry holds the bytes. */
type Node = { type: 'file' | 'directory' | 'symlink' | 'other'; layer: number; linkname?: string; source?: string };

/** The merged file tree of an image's layers (whiteouts applied), without contents: enough to resolve paths. */
export async function indexLayers(layers: Array<{ data: Buffer }>): Promise<Map<string, Node>> {
  const index = new Map<string, Node>();
  for (const [layer, { data }] of layers.entries()) {
    const headers: Array<{ path: string; type?: string | null; linkname?: string | null }> = [];
    await eachEntry(data, (header) => {
      headers.push({ path: posix.normalize(`/${header.name}`).replace(/\/+$/, '') || '/', type: header.type, linkname: header.linkname });
      return false;
    });
    // Whiteouts remove from the layers below, never from their own layer: apply them first.
    for (const { path } of headers) {
      const base = posix.basename(path);
      if (base === '.wh..wh..opq') removeBelow(index, posix.dirname(path), false);
      else if (base.startsWith('.wh.')) removeBelow(index, posix.join(posix.dirname(path), base.slice(4)), true);
    }
    for (const h of headers) {
      if (posix.basename(h.path).startsWith('.wh.')) continue;
      const type = h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'directory' ? 'directory' : h.type === 'symlink' ? 'symlink' : 'other';
      if (type !== 'directory') removeBelow(index, h.path, false);
      if (h.type === 'link') {
        const source = posix.normalize(`/${h.linkname ?? ''}`);
        const target = index.get(source);
        if (target?.type === 'file') index.set(h.path, { ...target, source: target.source ?? source });
        continue;
      }
      index.set(h.path, { type, layer, ...(h.linkname ? { linkname: h.linkname } : {}) });
    }
  }
  // Layers need not list parent directories: they exist because something is inside them.
  for (const [path, node] of [...index]) {
    for (let dir = posix.dirname(path); dir !== '/' && !index.has(dir); dir = posix.dirname(dir)) index.set(dir, { type: 'directory', layer: node.layer });
  }
  return index;
}

function removeBelow(index: Map<string, Node>, path: string, itself: boolean): void {
  for (const key of [...index.keys()]) if ((itself && key === path) || key.startsWith(`${path}/`)) index.delete(key);
}

/** Follows symbolic links (in any component) inside the image, as the kernel would inside the container. */
export function resolveInImage(index: Map<string, Node>, path: string, hops = 0): string | undefined {
  if (hops > 32) return undefined;
  const parts = posix.normalize(path).split('/').filter(Boolean);
  let current = '';
  for (let i = 0; i < parts.length; i++) {
    const candidate = `${current}/${parts[i]}`;
    const node = index.get(candidate);
    if (!node) return undefined;
    if (node.type === 'symlink') {
      const target = node.linkname!.startsWith('/') ? node.linkname! : posix.join(current || '/', node.linkname!);
      const resolved = resolveInImage(index, posix.join(target, ...parts.slice(i + 1)), hops + 1);
      return resolved;
    }
    current = candidate;
  }
  return current || '/';
}

/** The program a container would start for `argv0`: searched on the image's PATH, links resolved, bytes read. */
export async function programInImage(layers: Array<{ data: Buffer }>, argv0: string, pathVar: string): Promise<{ path: string; data: Buffer }> {
  const index = await indexLayers(layers);
  const candidates = argv0.includes('/') ? [argv0] : pathVar.split(':').filter(Boolean).map((d) => posix.join(d, argv0));
  for (const candidate of candidates) {
    const resolved = resolveInImage(index, candidate);
    const node = resolved ? index.get(resolved) : undefined;
    if (resolved && node?.type === 'file') return { path: resolved, data: await fileData(layers[node.layer]!.data, node.source ?? resolved) };
  }
  throw new ImageError('IMAGE_PROGRAM', `the image has no program '${argv0}'${argv0.includes('/') ? '' : ` on its PATH (${pathVar})`}`, {
    hint: 'choose a base image (build.from) that contains it, or name it by its path in the image',
  });
}

async function fileData(layer: Buffer, path: string): Promise<Buffer> {
  let found: Buffer | undefined;
  await eachEntry(layer, (header, body) => {
    if (posix.normalize(`/${header.name}`) === path) found = body();
    return found !== undefined;
  }, true);
  return found ?? Buffer.alloc(0);
}

/** Walks a gzipped (or plain) tar; `visit` returns true to stop. Bodies are collected only when asked for. */
async function eachEntry(layer: Buffer, visit: (header: { name: string; type?: string | null; linkname?: string | null }, body: () => Buffer) => boolean, withBodies = false): Promise<void> {
  const tar = layer[0] === 0x1f && layer[1] === 0x8b ? gunzipLayer(layer) : layer;
  const ex = extract();
  let stopped = false;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        if (withBodies && !stopped) chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (!stopped) stopped = visit(header, () => Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  Readable.from([tar]).pipe(ex);
  await done;
}
