import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { gunzipLayer } from './gunzip.js';
import type { LayerEntry } from './layer.js';

/** A tar header, as tar-stream gives it. */
export interface TarHeader {
  name: string;
  type?: string | null;
  linkname?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * One path of the merged tree of an image's layers. `layer` is the index of the layer whose entry holds the
 * bytes; `linkOf`, for a hard link, the path of that entry; `data`, the bytes (only when contents were asked
 * for).
 */
export interface MergedNode {
  type: 'file' | 'directory' | 'symlink' | 'other';
  layer: number;
  mode: number;
  uid: number;
  gid: number;
  /** A symbolic link's target. */
  linkname?: string;
  linkOf?: string;
  data?: Buffer;
}

export type Layers = Array<{ data: Buffer }>;
type Item = { header: TarHeader; path: string; body: Buffer | undefined };

/** Where an entry lands in the image: absolute, normalized, never above the root ('../../etc' is '/etc'). */
export function entryPath(name: string): string {
  return posix.normalize(`/${name}`).replace(/\/+$/, '') || '/';
}

/**
 * The one walk over an image's layers: each layer's whiteouts, then its entries, in order. A whiteout removes from
 * the layers below, never from its own layer; an entry that is not a directory replaces what was under its
 * path; a hard link copies the node of the file it names (a link to anything else leaves nothing at its path).
 */
export async function mergeLayers(layers: Layers, opts: { contents: boolean }): Promise<Map<string, MergedNode>> {
  const tree = new Map<string, MergedNode>();
  for (const [layer, { data }] of layers.entries()) {
    const items: Item[] = [];
    await eachEntry(
      data,
      (header, body) => {
        items.push({ header, path: entryPath(header.name), body: opts.contents ? body() : undefined });
        return false;
      },
      opts.contents,
    );
    for (const { path } of items) applyWhiteout(tree, path);
    for (const item of items) if (!posix.basename(item.path).startsWith('.wh.')) place(tree, item, layer);
  }
  return tree;
}

function applyWhiteout(tree: Map<string, MergedNode>, path: string): void {
  const base = posix.basename(path);
  if (base === '.wh..wh..opq') removeUnder(tree, posix.dirname(path), false);
  else if (base.startsWith('.wh.')) removeUnder(tree, posix.join(posix.dirname(path), base.slice(4)), true);
}

function place(tree: Map<string, MergedNode>, item: Item, layer: number): void {
  const { header, path, body } = item;
  if (header.type !== 'directory') removeUnder(tree, path, false); // a file replacing a directory
  if (header.type === 'link') {
    const linkOf = entryPath(header.linkname ?? '');
    const target = tree.get(linkOf);
    if (target?.type === 'file') tree.set(path, { ...target, linkOf: target.linkOf ?? linkOf });
    else tree.delete(path);
    return;
  }
  const type = nodeType(header.type);
  const mode = (header.mode ?? 0o644) & 0o7777;
  const node: MergedNode = { type, layer, mode, uid: header.uid ?? 0, gid: header.gid ?? 0 };
  if (type === 'symlink') node.linkname = header.linkname ?? '';
  if (type === 'file' && body) node.data = body;
  tree.set(path, node);
}

function nodeType(type: string | null | undefined): MergedNode['type'] {
  if (type === 'file' || type === 'contiguous-file') return 'file';
  if (type === 'directory' || type === 'symlink') return type;
  return 'other';
}

function removeUnder(tree: Map<string, MergedNode>, path: string, itself: boolean): void {
  for (const key of [...tree.keys()]) if ((itself && key === path) || key.startsWith(`${path}/`)) tree.delete(key);
}

/**
 * The merged file tree of an image's layers, with contents: whiteouts applied, hard links resolved to
 * copies. Sconifying squashes an image into one layer from this, because hiding a directory with a
 * whiteout would leave its plaintext in the lower layers that are pushed along. Devices and FIFOs are
 * dropped (after replacing what the layers below had at their paths).
 */
export async function mergedTree(layers: Layers): Promise<Map<string, LayerEntry>> {
  const tree = new Map<string, LayerEntry>();
  for (const [path, node] of await mergeLayers(layers, { contents: true })) {
    const entry = layerEntry(path, node);
    if (entry) tree.set(path, entry);
  }
  return tree;
}

function layerEntry(path: string, node: MergedNode): LayerEntry | undefined {
  const owner = { uid: node.uid, gid: node.gid };
  if (node.type === 'directory') return { type: 'directory', path, mode: node.mode, ...owner };
  if (node.type === 'symlink') return { type: 'symlink', path, target: node.linkname ?? '', ...owner };
  if (node.type !== 'file') return undefined;
  const link = node.linkOf === undefined ? {} : { linkOf: node.linkOf };
  return { type: 'file', path, mode: node.mode, data: node.data ?? Buffer.alloc(0), ...owner, ...link };
}

type Visit = (header: TarHeader, body: () => Buffer) => boolean;

/** Walks a gzipped (or plain) tar; `visit` returns true to stop. Bodies are collected only when asked for. */
export async function eachEntry(layer: Buffer, visit: Visit, withBodies = false): Promise<void> {
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
