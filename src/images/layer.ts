import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { sha256, type Digest } from './digest.js';
import { MEDIA, type Blob } from './oci.js';

/** One file-system entry of a layer. Paths are absolute inside the image. */
export type LayerEntry = (
  | { type: 'file'; path: string; mode: number; data: Buffer }
  | { type: 'directory'; path: string; mode: number }
  | { type: 'symlink'; path: string; target: string }
) & { uid?: number; gid?: number /** For a hard link: the path it links to. */; linkOf?: string };

export interface Layer extends Blob {
  /** SHA-256 of the uncompressed tar: the image config's `rootfs.diff_ids`. */
  diffId: Digest;
}

/**
 * A layer kept in `cacheDir` as `<name>.tgz` (the bytes) and `<name>.json` (digests and descriptor), built by `build`
 * when either is missing. `name` carries the digest of whatever the layer is made from.
 */
export async function cachedLayer(cacheDir: string, name: string, build: () => Promise<Layer>): Promise<Layer> {
  const cached = join(cacheDir, name);
  if (existsSync(`${cached}.json`) && existsSync(`${cached}.tgz`)) {
    const meta = JSON.parse(readFileSync(`${cached}.json`, 'utf8')) as Omit<Layer, 'data'>;
    return { ...meta, data: readFileSync(`${cached}.tgz`) };
  }
  const layer = await build();
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(`${cached}.tgz`, layer.data);
  writeFileSync(`${cached}.json`, JSON.stringify({ diffId: layer.diffId, descriptor: layer.descriptor }));
  return layer;
}

/**
 * A reproducible layer: entries sorted by path, parents added, every timestamp 0, owner root, and gzip with
 * fixed settings — the same inputs give the same bytes, so the same digests.
 */
export async function buildLayer(entries: LayerEntry[]): Promise<Layer> {
  const tar = await tarOf(withParents(entries));
  const gz = gzipSync(tar, { level: 6 });
  return {
    diffId: sha256(tar),
    data: gz,
    descriptor: { mediaType: MEDIA.layerGzip, digest: sha256(gz), size: gz.length },
  };
}

function withParents(entries: LayerEntry[]): LayerEntry[] {
  const byPath = new Map(entries.map((e) => [normalize(e.path), e]));
  for (const e of entries) {
    const parts = normalize(e.path).split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!byPath.has(dir)) byPath.set(dir, { type: 'directory', path: dir, mode: 0o755 });
    }
  }
  return [...byPath.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([path, e]) => ({ ...e, path }));
}

/** Tar member names are relative ('usr/bin/x'), as Docker and umoci write them. */
function normalize(path: string): string {
  return path.replace(/^\/+/, '').replace(/\/+$/, '');
}

async function tarOf(entries: LayerEntry[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    archive.on('end', () => resolve());
    archive.on('error', reject);
  });
  for (const e of entries) {
    const common = { mtime: new Date(0), uid: e.uid ?? 0, gid: e.gid ?? 0, uname: '', gname: '' };
    if (e.type === 'file')
      archive.entry({ ...common, name: e.path, mode: e.mode, type: 'file', size: e.data.length }, e.data);
    else if (e.type === 'directory') archive.entry({ ...common, name: `${e.path}/`, mode: e.mode, type: 'directory' });
    else archive.entry({ ...common, name: e.path, mode: 0o777, type: 'symlink', linkname: e.target });
  }
  archive.finalize();
  await done;
  return Buffer.concat(chunks);
}
