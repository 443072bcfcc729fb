import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { codeTreeDigest } from '../attestation/index.js';
import { RUNTIME_ROOT } from '../runtime/index.js';
import { buildLayer, cachedLayer, type Layer, type LayerEntry } from './layer.js';

/** Where the runtime lives in an image: its own Node.js, the C libraries that Node needs, and Veil's code. */
export const RUNTIME_DIR = '/opt/veil/runtime';

/**
 * How Veil runs in images whose base has no Node.js (or another C library): the runtime layer brings the
 * host's Node.js binary with the exact shared libraries it links, including the dynamic loader, which the
 * entrypoint calls directly with `--library-path`. The base image's own libraries are never used, so the
 * same layer works on Debian, distroless or musl-based images; it costs ≈ 30 MB compressed.
 */
export function runtimeEntrypoint(): string[] {
  const loader = basename(dynamicLoader(realpathSync(process.execPath)));
  return [
    `${RUNTIME_DIR}/lib/${loader}`,
    '--library-path',
    `${RUNTIME_DIR}/lib`,
    `${RUNTIME_DIR}/bin/node`,
    `${RUNTIME_DIR}/bin/veil.js`,
    'run',
    '--container',
    '--',
  ];
}

/** The runtime layer, built once per Node.js binary and Veil code tree and kept in `cacheDir`. */
export async function runtimeLayer(cacheDir: string): Promise<Layer> {
  const node = realpathSync(process.execPath);
  const stat = statSync(node);
  const key = createHash('sha256')
    .update(`${node}\0${stat.size}\0${stat.mtimeMs}\0`)
    .update(codeTreeDigest(RUNTIME_ROOT))
    .digest('hex')
    .slice(0, 32);
  return cachedLayer(cacheDir, `runtime-${key}`, () => buildLayer(runtimeEntries(node)));
}

function runtimeEntries(node: string): LayerEntry[] {
  const libs = sharedLibraries(node).map(
    (lib): LayerEntry => ({
      type: 'file',
      path: `${RUNTIME_DIR}/lib/${basename(lib.name)}`,
      mode: 0o755,
      data: readFileSync(lib.path),
    }),
  );
  const root = RUNTIME_ROOT.replace(/\/$/, '');
  const code = codeFiles(root).map(
    (rel): LayerEntry => ({
      type: 'file',
      path: `${RUNTIME_DIR}/dist/${rel}`,
      mode: 0o644,
      data: readFileSync(join(root, rel)),
    }),
  );
  return [
    { type: 'file', path: `${RUNTIME_DIR}/bin/node`, mode: 0o755, data: readFileSync(node) },
    {
      type: 'file',
      path: `${RUNTIME_DIR}/bin/veil.js`,
      mode: 0o755,
      data: readFileSync(join(root, '..', 'bin', 'veil.js')),
    },
    { type: 'file', path: `${RUNTIME_DIR}/package.json`, mode: 0o644, data: Buffer.from('{"type":"module"}\n') },
    ...libs,
    ...code,
  ];
}

/** The compiled code the runtime measures (codeTreeDigest's selection): .js files, no tests or benchmarks. */
function codeFiles(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) return rel === 'e2e' || rel === 'bench' ? [] : codeFiles(root, rel);
    return e.isFile() && e.name.endsWith('.js') && !e.name.endsWith('.test.js') ? [rel] : [];
  });
}

/** `ldd`'s answer: each library Node links, by the name the loader looks for and the file that provides it. */
function sharedLibraries(binary: string): Array<{ name: string; path: string }> {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return out.split('\n').flatMap((line) => {
    const arrow = /^\s*(\S+)\s+=>\s+(\/\S+)/.exec(line);
    if (arrow) return [{ name: arrow[1]!, path: realpathSync(arrow[2]!) }];
    const loader = /^\s*(\/\S+)\s+\(/.exec(line);
    return loader ? [{ name: loader[1]!, path: realpathSync(loader[1]!) }] : [];
  });
}

function dynamicLoader(binary: string): string {
  const loader = sharedLibraries(binary).find((l) => /ld-linux|ld-musl/.test(l.name));
  return loader?.name ?? '/lib64/ld-linux-x86-64.so.2';
}
