import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { codeTreeDigest, simulationMeasurement } from '../attestation/index.js';
import type { ReleasedConfig } from '../contract/index.js';
import { encryptTree, plainTreeMac } from '../fsshield/index.js';
import { saveShieldKey } from '../manifests/bundle.js';
import { PolicyError, splitCommand } from '../policy/index.js';
import { CONTAINER_SHIELD_ROOT, RUNTIME_ROOT } from '../runtime/index.js';
import { ImageError } from './errors.js';
import { mergedTree } from './flatten.js';
import { assembleImage, pullImage, pushImage, readImage, writeImage, type Image } from './image.js';
import { buildLayer, type LayerEntry } from './layer.js';
import { ImageLayout } from './layout.js';
import { formatReference, parseReference } from './reference.js';
import { runtimeEntrypoint, runtimeLayer } from './runtime-layer.js';

export interface SconifyInput {
  /** A registry reference, or `oci:<layout dir>:<tag>`. */
  from: string;
  to: string;
  /** The program in the image that runs (and is measured). */
  binary: string;
  /** Directories to encrypt and authenticate. */
  dirs: string[];
  /** Directories kept as they are (they are anyway; listed ones must not overlap `dirs`). */
  plain: string[];
  name: string;
}

/** What the session needs, from the native image: its command, environment, working directory and shield. */
type SessionPart = Pick<ReleasedConfig, 'command' | 'environment' | 'pwd'> & {
  fspf: Required<NonNullable<ReleasedConfig['fspf']>>;
};

export interface SconifiedImage extends SessionPart {
  reference: string;
  digest: string;
  layout: string;
  measurement: string;
  pushed: boolean;
}

/**
 * `veil sconify`: the native image squashed into one layer without the plaintext of `dirs`, the Veil
 * runtime as entrypoint, and `dirs` encrypted under CONTAINER_SHIELD_ROOT (decrypted back into place, in
 * memory volumes, after attestation). The rest of the image is kept, with its owners and modes.
 */
export async function sconifyImage(
  input: SconifyInput,
  opts: {
    target: string;
    cacheDir: string;
    keysDir: string;
    push: boolean;
    env?: NodeJS.ProcessEnv;
    progress?: (line: string) => void;
  },
): Promise<SconifiedImage> {
  const dirs = checkDirs(input);
  const native = await loadImage(input.from, opts.env);
  opts.progress?.(`squashing ${input.from}`);
  const tree = await mergedTree(native.layers);
  const isDir = (dir: string) =>
    tree.get(dir)?.type === 'directory' || [...tree.keys()].some((k) => k.startsWith(`${dir}/`));
  for (const dir of dirs)
    if (!isDir(dir))
      throw new ImageError('IMAGE_PROGRAM', `${input.from} has no directory ${dir} (--dir)`, {
        hint: 'name directories that exist in the image',
      });
  const binary = resolveFile(tree, input.binary);
  if (binary.type !== 'file')
    throw new ImageError('IMAGE_PROGRAM', `${input.from} has no program ${input.binary} (--binary)`, {
      hint: 'give the path of the program the image runs, e.g. /usr/bin/python3',
    });
  const inDirs = (path: string) => dirs.some((d) => path.startsWith(`${d}/`));
  // A hard link elsewhere to a file in a --dir is the same content: it is secret too.
  const secret = (e: LayerEntry) =>
    e.type === 'file' && (inDirs(e.path) || (e.linkOf !== undefined && inDirs(e.linkOf)));
  refuseUnsupported(tree, inDirs, binary.path, dirs);
  const shield = encryptDirs(
    [...tree.values()].filter((e) => secret(e) && inDirs(e.path)),
    join(opts.target, 'sconify', input.name),
    opts.keysDir,
  );
  const layers = [
    await buildLayer([...tree.values()].filter((e) => !secret(e))),
    await runtimeLayer(opts.cacheDir),
    await buildLayer(shield.entries),
  ];
  const measurement = simulationMeasurement(codeTreeDigest(RUNTIME_ROOT), binary.data);
  const nativeConfig = native.config.config;
  const image = assembleImage(
    undefined,
    layers,
    () => ({
      ...nativeConfig,
      Entrypoint: runtimeEntrypoint(),
      Cmd: [binary.path],
      Labels: {
        ...(nativeConfig.Labels ?? {}),
        'dev.veil.measurement': measurement,
        'dev.veil.program': binary.path,
        'dev.veil.sconified-from': input.from,
      },
    }),
    [`veil sconify ${input.from} (squashed, ${dirs.join(', ')} shielded)`],
  );
  const ref = parseReference(input.to);
  const layout = join(opts.target, 'oci', input.name);
  writeImage(new ImageLayout(layout), ref.tag ?? 'latest', image);
  if (opts.push)
    await pushImage(ref, image, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.progress ? { progress: opts.progress } : {}),
    });
  return {
    reference: formatReference(ref),
    digest: image.manifest.descriptor.digest,
    layout,
    measurement,
    pushed: opts.push,
    command: nativeCommand(nativeConfig.Entrypoint, nativeConfig.Cmd, binary.path),
    environment: Object.fromEntries(
      (nativeConfig.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    ),
    pwd: nativeConfig.WorkingDir || '/',
    fspf: { path: `${CONTAINER_SHIELD_ROOT}/fs.fspf`, key: shield.key, tag: shield.tag },
  };
}

/**
 * The shield holds regular files: a link inside a --dir would vanish under the memory volume at run time,
 * and the program cannot be inside what is decrypted only after it was measured and started.
 */
function refuseUnsupported(
  tree: Map<string, LayerEntry>,
  inDirs: (p: string) => boolean,
  binary: string,
  dirs: string[],
): void {
  if (inDirs(binary))
    throw new ImageError('IMAGE_PROGRAM', `--binary ${binary} is inside an encrypted directory (${dirs.join(', ')})`, {
      hint: 'the program starts before the directories are decrypted: keep it outside --dir',
    });
  const link = [...tree.values()].find((e) => e.type === 'symlink' && inDirs(e.path));
  if (link?.type === 'symlink')
    throw new ImageError(
      'IMAGE_PROGRAM',
      `${link.path} is a symbolic link (to ${link.target}) inside an encrypted directory`,
      { hint: 'links inside --dir are not supported yet: replace it by the file, or keep that directory plain' },
    );
}

function checkDirs(input: SconifyInput): string[] {
  const dirs = input.dirs.map((d) => posix.normalize(d).replace(/\/+$/, ''));
  if (dirs.length === 0)
    throw new ImageError('IMAGE_PROGRAM', 'no --dir given: nothing would be encrypted', {
      hint: 'name the directories that hold the code or data to protect, e.g. --dir /app',
    });
  for (const d of [...dirs, ...input.plain])
    if (!d.startsWith('/') || d === '/')
      throw new ImageError('IMAGE_PROGRAM', `'${d}' must be an absolute directory other than /`, {
        hint: 'e.g. --dir /app',
      });
  const overlap = input.plain.find((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`) || d.startsWith(`${p}/`)));
  if (overlap)
    throw new ImageError('IMAGE_PROGRAM', `--plain ${overlap} overlaps a --dir`, {
      hint: 'a directory is either encrypted or kept plain',
    });
  return dirs;
}

async function loadImage(from: string, env?: NodeJS.ProcessEnv): Promise<Image> {
  const layout = /^oci:(.+?)(?::([^:/]+))?$/.exec(from);
  if (layout) return readImage(new ImageLayout(layout[1]!), layout[2] ?? 'latest');
  return pullImage(parseReference(from), env);
}

function resolveFile(
  tree: Map<string, LayerEntry>,
  path: string,
  hops = 0,
): (LayerEntry & { path: string }) | { type: 'missing' } {
  const entry = tree.get(posix.normalize(path));
  if (!entry || hops > 32) return { type: 'missing' };
  if (entry.type !== 'symlink') return entry;
  return resolveFile(
    tree,
    entry.target.startsWith('/') ? entry.target : posix.join(posix.dirname(path), entry.target),
    hops + 1,
  );
}

/**
 * The files of `dirs` encrypted as one shielded tree whose paths are relative to / (it decrypts into /). The
 * tree of the last run is kept when the files are the same (MAC under its key, kept 0600 in `keysDir`), so
 * sconifying the same image twice gives the same digests.
 */
function encryptDirs(
  files: LayerEntry[],
  workDir: string,
  keysDir: string,
): { key: string; tag: string; entries: LayerEntry[] } {
  const plain = mkdtempSync(join(tmpdir(), 'veil-sconify-'));
  const out = join(workDir, 'shield');
  try {
    for (const f of files) {
      if (f.type !== 'file') continue;
      const path = join(plain, f.path);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.data, { mode: f.mode });
    }
    const previous = readPrevious(workDir, keysDir);
    let key: string;
    let tag: string;
    if (previous && plainTreeMac(plain, previous.key) === previous.mac) ({ key, tag } = previous);
    else {
      rmSync(out, { recursive: true, force: true });
      ({ key, tag } = encryptTree(plain, out));
      saveShieldKey(keysDir, tag, key);
      writeFileSync(join(workDir, 'shield.json'), `${JSON.stringify({ tag, mac: plainTreeMac(plain, key) })}\n`);
    }
    const entries = readdirSync(out)
      .sort()
      .map(
        (name): LayerEntry => ({
          type: 'file',
          path: `${CONTAINER_SHIELD_ROOT}/${name}`,
          mode: 0o644,
          data: readFileSync(join(out, name)),
        }),
      );
    return { key, tag, entries };
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
}

function readPrevious(workDir: string, keysDir: string): { key: string; tag: string; mac: string } | undefined {
  try {
    const { tag, mac } = JSON.parse(readFileSync(join(workDir, 'shield.json'), 'utf8')) as { tag: string; mac: string };
    return { tag, mac, key: readFileSync(join(keysDir, `${tag}.key`), 'utf8').trim() };
  } catch {
    return undefined;
  }
}

/** The native image's command: Entrypoint then Cmd; a shell form (`/bin/sh -c "…"`) is split into its words. */
function nativeCommand(
  entrypoint: string[] | null | undefined,
  cmd: string[] | null | undefined,
  binary: string,
): string[] {
  const all = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (all.length >= 3 && /(^|\/)(ba)?sh$/.test(all[0]!) && all[1] === '-c' && !/(^|\/)(ba)?sh$/.test(binary)) {
    try {
      return splitCommand(all[2]!);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      const why = err.issues[0]!.message;
      throw new ImageError('IMAGE_PROGRAM', `the image's command '${all[2]}' needs a shell: ${why}`, {
        hint: 'give --binary the shell, or change the image to an exec-form command',
        cause: err,
      });
    }
  }
  return all.length > 0 ? all : [binary];
}
