import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RUNTIME_ROOT } from '../runtime/index.js';
import { assembleImage, pushImage, writeImage } from './image.js';
import { buildLayer, cachedLayer, type Layer, type LayerEntry } from './layer.js';
import { ImageLayout } from './layout.js';
import { formatReference, parseReference } from './reference.js';
import { RUNTIME_DIR, runtimeEntrypoint, runtimeLayer } from './runtime-layer.js';

/** Parts of a production dependency the CAS never loads: sources of native addons and their build objects. */
const SKIP = [
  /^better-sqlite3\/(deps|src)\//,
  /\/build\/Release\/(obj|obj\.target|\.deps)\//,
  /\.(md|markdown|ts|map)$/i,
];

/**
 * The CAS as a container image, from scratch: the runtime layer (Node.js with its own loader and libraries,
 * Veil's code) plus the production node_modules. `cas serve` keeps its store and master key under /data,
 * the volume the chart mounts.
 */
export async function buildCasImage(opts: {
  to: string;
  target: string;
  cacheDir: string;
  push: boolean;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}): Promise<{ reference: string; digest: string; layout: string }> {
  const layers = [await runtimeLayer(opts.cacheDir), await dependencyLayer(opts.cacheDir)];
  const entrypoint = [...runtimeEntrypoint().slice(0, -3), 'cas'];
  const image = assembleImage(
    undefined,
    layers,
    () => ({
      Entrypoint: entrypoint,
      Cmd: ['serve', '--listen', '0.0.0.0:8081', '--data', '/data'],
      Env: ['VEIL_HOME=/data/home'],
      WorkingDir: '/',
      ExposedPorts: { '8081/tcp': {} },
      Labels: { 'org.opencontainers.image.title': 'veil-cas' },
    }),
    ['veil cas: runtime', 'veil cas: node_modules'],
  );
  const ref = parseReference(opts.to);
  const layout = join(opts.target, 'oci', 'veil-cas');
  writeImage(new ImageLayout(layout), ref.tag ?? 'latest', image);
  if (opts.push)
    await pushImage(ref, image, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.progress ? { progress: opts.progress } : {}),
    });
  return { reference: formatReference(ref), digest: image.manifest.descriptor.digest, layout };
}

/** The production dependencies listed in package-lock.json, as the CAS's node_modules; cached by the lock. */
async function dependencyLayer(cacheDir: string): Promise<Layer> {
  const root = join(RUNTIME_ROOT, '..');
  const lock = readFileSync(join(root, 'package-lock.json'));
  const key = createHash('sha256').update(lock).update(process.version).digest('hex').slice(0, 32);
  return cachedLayer(cacheDir, `cas-deps-${key}`, () => buildDependencyLayer(root, lock));
}

async function buildDependencyLayer(root: string, lock: Buffer): Promise<Layer> {
  const packages = (JSON.parse(lock.toString('utf8')) as { packages: Record<string, { dev?: boolean }> }).packages;
  const dirs = Object.entries(packages)
    .filter(([path, p]) => path.startsWith('node_modules/') && !p.dev)
    .map(([path]) => path);
  const entries = dirs
    .flatMap((dir) => filesUnder(join(root, dir)))
    .map((file): LayerEntry => {
      const rel = relative(join(root, 'node_modules'), file);
      return {
        type: 'file',
        path: `${RUNTIME_DIR}/node_modules/${rel}`,
        mode: statSync(file).mode & 0o755,
        data: readFileSync(file),
      };
    })
    .filter((e) => !SKIP.some((re) => re.test(e.path.slice(`${RUNTIME_DIR}/node_modules/`.length))));
  return buildLayer(entries);
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : filesUnder(path);
    return e.isFile() ? [path] : [];
  });
}
