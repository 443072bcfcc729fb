import { posix } from 'node:path';
import { ImageError } from './errors.js';
import { eachEntry, entryPath, mergeLayers, type Layers, type MergedNode } from './flatten.js';

/** The merged file tree of an image's layers (whiteouts applied), without contents: enough to resolve paths. */
export async function indexLayers(layers: Layers): Promise<Map<string, MergedNode>> {
  const index = await mergeLayers(layers, { contents: false });
  // Layers need not list parent directories: they exist because something is inside them.
  for (const [path, node] of [...index]) {
    for (let dir = posix.dirname(path); dir !== '/' && !index.has(dir); dir = posix.dirname(dir)) {
      index.set(dir, { type: 'directory', layer: node.layer, mode: 0o755, uid: 0, gid: 0 });
    }
  }
  return index;
}

/** Follows symbolic links (in any component) inside the image, as the kernel would inside the container. */
export function resolveInImage(index: Map<string, MergedNode>, path: string, hops = 0): string | undefined {
  if (hops > 32) return undefined;
  const parts = posix.normalize(path).split('/').filter(Boolean);
  let current = '';
  for (let i = 0; i < parts.length; i++) {
    const candidate = `${current}/${parts[i]}`;
    const node = index.get(candidate);
    if (!node) return undefined;
    if (node.type === 'symlink') {
      const link = node.linkname ?? '';
      const target = link.startsWith('/') ? link : posix.join(current || '/', link);
      return resolveInImage(index, posix.join(target, ...parts.slice(i + 1)), hops + 1);
    }
    current = candidate;
  }
  return current || '/';
}

/** The program a container would start for `argv0`: searched on the image's PATH, links resolved, bytes read. */
export async function programInImage(
  layers: Layers,
  argv0: string,
  pathVar: string,
): Promise<{ path: string; data: Buffer }> {
  const index = await indexLayers(layers);
  const onPath = argv0.includes('/')
    ? [argv0]
    : pathVar
        .split(':')
        .filter(Boolean)
        .map((d) => posix.join(d, argv0));
  for (const candidate of onPath) {
    const resolved = resolveInImage(index, candidate);
    const node = resolved ? index.get(resolved) : undefined;
    if (resolved && node?.type === 'file') {
      return { path: resolved, data: await fileData(layers[node.layer]!.data, node.linkOf ?? resolved) };
    }
  }
  const where = argv0.includes('/') ? '' : ` on its PATH (${pathVar})`;
  throw new ImageError('IMAGE_PROGRAM', `the image has no program '${argv0}'${where}`, {
    hint: 'choose a base image (build.from) that contains it, or name it by its path in the image',
  });
}

/** The bytes of the layer's last entry at `path`: the one the merged tree kept, as a later entry replaces. */
async function fileData(layer: Buffer, path: string): Promise<Buffer> {
  let found: Buffer | undefined;
  await eachEntry(
    layer,
    (header, body) => {
      if (entryPath(header.name) === path) found = body();
      return false;
    },
    true,
  );
  return found ?? Buffer.alloc(0);
}
