import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import type { Engine, SpawnResult } from './engine.js';
import { ImageError } from './errors.js';
import { entryPath, type TarHeader } from './flatten.js';
import { assembleImage, type Image } from './image.js';
import { buildLayer, type Layer, type LayerEntry } from './layer.js';
import { MEDIA } from './oci.js';

/** `build.requirements` and `build.run` of a service manifest, to be run in its base image. */
export interface BuildSteps {
  /** `build.run`, in order: each one a `/bin/sh -c` command line. */
  run: string[];
  /**
   * The pip requirements file: its name (for messages) and its bytes, which reach pip on its stdin only. No
   * directory of the host is mounted: the steps and the packages pip installs see nothing of the machine.
   */
  requirements?: { name: string; content: Buffer } | undefined;
  /**
   * SHA-256 (hex) of each plaintext file of `build.copy`, with its name: a guard against accidents (a step that
   * fetched a byte-identical copy), not a barrier — an altered copy passes.
   */
  plaintext?: Map<string, string> | undefined;
  /** Where the steps may change nothing: what Veil's own layers, or the decrypted application, cover. */
  forbidden: string[];
}

/** Time for all the steps of one image; every other engine command gets ENGINE_TIMEOUT_MS. */
export const STEPS_TIMEOUT_MS = 60 * 60 * 1000;
export const ENGINE_TIMEOUT_MS = 10 * 60 * 1000;
/** Lines of a failed step's output quoted in the error. */
const TAIL_LINES = 20;

/**
 * Paths the engine itself creates or mounts in every container: never part of what
 * the steps changed. Directories the engine makes only to hold them are dropped when nothing else is inside.
 */
const ENGINE_PATHS = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/etc/mtab', '/run/.containerenv'];
const ENGINE_TREES = ['/proc', '/sys', '/dev', '/run/secrets', '/.dockerenv'];
const ENGINE_PARENTS = ['/etc', '/run'];

/**
 * Runs each step with `/bin/sh -c`; the first that fails stops the rest and names itself on stderr, with a
 * nonce the steps cannot guess (`veil-build-step NONCE INDEX CODE`). Only the first step has the container's
 * stdin (the requirements, when there are some): every later one gets /dev/null, so build.run cannot read them.
 */
const DRIVER = [
  'n="$1"; shift; i=0',
  'for step do /bin/sh -c "$step" || { c=$?; echo "veil-build-step $n $i $c" >&2; exit $c; }',
  'exec </dev/null; i=$((i+1)); done',
].join('\n');
/** Where pip reads the requirements: the container's stdin, as the first step. */
const REQUIREMENTS_SCRIPT = 'python3 -m pip install --no-cache-dir -r /dev/stdin';

/**
 * The file-system changes of the steps, run in `base` by a container engine, as one reproducible layer:
 * paths sorted, no timestamps, owners and modes as the container saw them, deletions as whiteouts.
 * SOURCE_DATE_EPOCH=0 is set while they run, so tools that honour it (pip's byte-code) write no build time.
 */
export async function runBuildSteps(
  base: Image,
  steps: BuildSteps,
  engine: Engine,
  opts: { env: NodeJS.ProcessEnv; network: string },
): Promise<Layer> {
  const scripts = stepScripts(steps);
  const tmp = mkdtempSync(join(tmpdir(), 'veil-build-'));
  const nonce = randomBytes(8).toString('hex');
  const call = (args: string[], timeoutMs = ENGINE_TIMEOUT_MS) =>
    engine.spawn(engine.path, args, { env: opts.env, timeoutMs });
  let image: string | undefined;
  let container: string | undefined;
  try {
    const archive = join(tmp, 'base.tar');
    // As an OCI image (the base may have come with Docker's media types), under a name of this build only.
    await writeArchive(
      assembleImage(base, [], (c) => c, []),
      archive,
      `localhost/veil-build/base:${nonce}`,
    );
    image = loadedName(await must(engine, call(['load', '-i', archive]), 'load the base image'));
    const created = await must(engine, call(createArgs(image, steps, scripts, nonce, opts.network)), 'create');
    container = created.stdout.trim().split('\n').pop()!.trim();
    const input = steps.requirements?.content;
    const start = ['start', '-a', ...(input ? ['-i'] : []), container];
    const started = await unstarted(
      engine,
      engine.spawn(engine.path, start, { env: opts.env, timeoutMs: STEPS_TIMEOUT_MS, input }),
    );
    if (started.code === null)
      throw new ImageError('IMAGE_BUILD_STEP', `the build steps did not end within ${STEPS_TIMEOUT_MS / 60000} min`, {
        hint: 'make the steps faster (or split the work into the base image)',
      });
    if (started.code !== 0) throw stepFailure(engine, started, scripts, nonce);
    const changes = parseDiff((await must(engine, call(['diff', container]), 'diff')).stdout);
    const kept = keptChanges(changes, steps.forbidden);
    const exported = join(tmp, 'fs.tar');
    await must(engine, call(['export', '-o', exported, container]), 'export');
    const entries = await changedEntries(exported, kept);
    refusePlaintext(entries, steps.plaintext);
    return await buildLayer(entries);
  } finally {
    if (container) await call(['rm', '-f', container]).catch(() => undefined);
    if (image) await call(['rmi', image]).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** What the driver runs, labelled as the manifest names it. */
function stepScripts(steps: BuildSteps): Array<{ label: string; script: string }> {
  return [
    ...(steps.requirements
      ? [{ label: `requirements (${steps.requirements.name})`, script: REQUIREMENTS_SCRIPT }]
      : []),
    ...steps.run.map((script, i) => ({ label: `build.run[${i}]`, script })),
  ];
}

function createArgs(
  image: string,
  steps: BuildSteps,
  scripts: Array<{ script: string }>,
  nonce: string,
  network: string,
): string[] {
  return [
    'create',
    ...(network === 'default' ? [] : ['--network', network]),
    '--entrypoint',
    '/bin/sh',
    '-e',
    'SOURCE_DATE_EPOCH=0',
    // No volume, ever: the requirements come on stdin, so no file of the host is inside the container.
    ...(steps.requirements ? ['-i'] : []),
    image,
    '-c',
    DRIVER,
    'veil-build',
    nonce,
    ...scripts.map((s) => s.script),
  ];
}

/** The engine's own process failed to start (not the container): named as the engine's failure. */
async function unstarted(engine: Engine, pending: Promise<SpawnResult>): Promise<SpawnResult> {
  try {
    return await pending;
  } catch (err) {
    throw new ImageError('IMAGE_ENGINE', `${engine.name} (${engine.path}) could not be started: ${String(err)}`, {
      hint: `check the engine works (${engine.name} info), or set VEIL_CONTAINER_ENGINE=none to skip the steps`,
      cause: err,
    });
  }
}

async function must(engine: Engine, pending: Promise<SpawnResult>, what: string): Promise<SpawnResult> {
  const result = await unstarted(engine, pending);
  if (result.code === 0) return result;
  throw new ImageError(
    'IMAGE_ENGINE',
    `${engine.name} could not ${what} (exit ${result.code ?? 'killed'}): ${tailOf(result.stderr || result.stdout)}`,
    {
      hint: `see ${engine.name}'s message (rootless podman needs subuids; some hosts need lower default_ulimits), or set VEIL_CONTAINER_ENGINE=none to skip the steps`,
    },
  );
}

/** `Loaded image: NAME` (docker, podman) or `Loaded image(s): NAME,…` (older podman). */
function loadedName(result: SpawnResult): string {
  const lines = `${result.stdout}\n${result.stderr}`.split('\n');
  for (const line of lines.reverse()) {
    const m = /^Loaded image(?:\(s\))?(?: ID)?:\s*(\S+?)(?:,.*)?$/.exec(line.trim());
    if (m) return m[1]!;
  }
  throw new ImageError(
    'IMAGE_ENGINE',
    `the engine loaded the base image but did not say its name: ${tailOf(result.stdout)}`,
    {
      hint: 'use podman ≥ 4 or docker ≥ 25 (they load OCI archives)',
    },
  );
}

function stepFailure(
  engine: Engine,
  result: SpawnResult,
  scripts: Array<{ label: string; script: string }>,
  nonce: string,
): ImageError {
  const marker = new RegExp(`^veil-build-step ${nonce} (\\d+) (\\d+)$`, 'm').exec(result.stderr);
  const output = `${result.stdout}${result.stderr}`.replace(new RegExp(`^veil-build-step ${nonce} .*\\n?`, 'm'), '');
  const step = marker ? scripts[Number(marker[1])] : undefined;
  if (!step)
    return new ImageError('IMAGE_ENGINE', `${engine.name} could not run the build container: ${tailOf(output)}`, {
      hint: "the base image needs /bin/sh; where the host refuses the engine's default rlimits, set lower ones in containers.conf (default_ulimits); VEIL_CONTAINER_ENGINE=none skips the steps",
    });
  return new ImageError(
    'IMAGE_BUILD_STEP',
    `${step.label} exited with ${marker![2]}: ${JSON.stringify(step.script)}\n${tailOf(output)}`,
    { hint: 'fix the step (its output ends above); it runs in build.from with /bin/sh -c' },
  );
}

function tailOf(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-TAIL_LINES).join('\n') || '(no output)';
}

export type Change = { kind: 'A' | 'C' | 'D'; path: string };

/** `podman diff` / `docker diff`: one `A|C|D /path` a line. */
export function parseDiff(text: string): Change[] {
  return text
    .split('\n')
    .flatMap((line) => {
      const m = /^([ACD]) (\/.*)$/.exec(line);
      return m ? [{ kind: m[1] as Change['kind'], path: posix.normalize(m[2]!) }] : [];
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const under = (path: string, root: string) => path === root || path.startsWith(root === '/' ? '/' : `${root}/`);

/** The steps' changes without the engine's own; refused when one touches a forbidden path. */
export function keptChanges(changes: Change[], forbidden: string[]): Change[] {
  const engine = (p: string) => ENGINE_PATHS.includes(p) || ENGINE_TREES.some((t) => under(p, t));
  let kept = changes.filter((c) => !engine(c.path));
  kept = kept.filter(
    (c) =>
      !(c.kind === 'A' && ENGINE_PARENTS.includes(c.path)) ||
      kept.some((o) => o.path !== c.path && under(o.path, c.path)),
  );
  const bad = kept.filter((c) => forbidden.some((f) => under(c.path, f)));
  if (bad.length > 0)
    throw new ImageError(
      'IMAGE_BUILD_CHANGES',
      `build.run or requirements changed ${bad
        .slice(0, 5)
        .map((c) => c.path)
        .join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}, under ${forbidden.join(' or ')}`,
      {
        hint: "Veil's runtime and shield layers, and the decrypted application (build.pwd), replace what is there: install elsewhere",
      },
    );
  return kept;
}

/**
 * A file of the layer with the bytes of a `build.copy` file is refused: the shield exists to keep those out. The
 * steps never see the copied files (nothing of the host is mounted); this catches a byte-identical copy that
 * came another way (a clone of the same repository), not a determined step.
 */
function refusePlaintext(entries: LayerEntry[], plaintext: Map<string, string> | undefined): void {
  if (!plaintext || plaintext.size === 0) return;
  for (const e of entries) {
    if (e.type !== 'file' || e.data.length === 0) continue;
    const copied = plaintext.get(createHash('sha256').update(e.data).digest('hex'));
    if (copied)
      throw new ImageError(
        'IMAGE_BUILD_CHANGES',
        `build.run or requirements wrote ${e.path}, which holds the plaintext of build.copy's ${copied}`,
        { hint: 'the copied files go into the image only encrypted: do not copy them in a build step' },
      );
  }
}

/** The layer entries of the kept changes, read from the container's exported file system. */
async function changedEntries(exported: string, changes: Change[]): Promise<LayerEntry[]> {
  const wanted = new Set<string>();
  // A deletion keeps its directories as they are (a whiteout's parent would otherwise be made 0755: /tmp is 1777).
  for (const c of changes)
    for (let p = c.kind === 'D' ? posix.dirname(c.path) : c.path; p !== '/'; p = posix.dirname(p)) wanted.add(p);
  const found = await readEntries(exported, (p) => wanted.has(p));
  const missing = [...found.values()].flatMap((e) => (e.linkOf && !found.has(e.linkOf) ? [e.linkOf] : []));
  const targets = missing.length > 0 ? await readEntries(exported, (p) => missing.includes(p)) : new Map();
  const entries = [...found.values()].map((e): LayerEntry => {
    if (!e.linkOf) return e;
    const target = found.get(e.linkOf) ?? targets.get(e.linkOf);
    const data = target?.type === 'file' ? target.data : Buffer.alloc(0);
    const { linkOf: _link, ...file } = e;
    return { ...file, type: 'file', data, mode: target?.type === 'file' ? target.mode : 0o644 } as LayerEntry;
  });
  return [...entries, ...whiteouts(changes)];
}

/** A deleted path becomes `.wh.<name>` in its directory (only the topmost of a deleted tree). */
function whiteouts(changes: Change[]): LayerEntry[] {
  const deleted = changes.filter((c) => c.kind === 'D').map((c) => c.path);
  return deleted
    .filter((p) => !deleted.some((o) => o !== p && under(p, o)))
    .map((p) => ({
      type: 'file',
      path: posix.join(posix.dirname(p), `.wh.${posix.basename(p)}`),
      mode: 0,
      data: Buffer.alloc(0),
    }));
}

async function readEntries(tarFile: string, keep: (path: string) => boolean): Promise<Map<string, LayerEntry>> {
  const found = new Map<string, LayerEntry>();
  const ex = extract();
  ex.on('entry', (header: TarHeader & { size?: number }, stream, next) => {
    const path = entryPath(header.name);
    const chunks: Buffer[] = [];
    const wanted = keep(path);
    stream.on('data', (c: unknown) => {
      if (wanted) chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      const entry = wanted ? toEntry(path, header, Buffer.concat(chunks)) : undefined;
      if (entry) found.set(path, entry);
      next();
    });
    stream.resume();
  });
  await pipeline(createReadStream(tarFile), ex);
  return found;
}

function toEntry(path: string, header: TarHeader, data: Buffer): LayerEntry | undefined {
  const owner = { uid: header.uid ?? 0, gid: header.gid ?? 0 };
  const mode = (header.mode ?? 0o644) & 0o7777;
  if (header.type === 'directory') return { type: 'directory', path, mode, ...owner };
  if (header.type === 'symlink') return { type: 'symlink', path, target: header.linkname ?? '', ...owner };
  if (header.type === 'link')
    return { type: 'file', path, mode, data, ...owner, linkOf: entryPath(header.linkname ?? '') };
  if (header.type === 'file' || header.type === 'contiguous-file') return { type: 'file', path, mode, data, ...owner };
  return undefined; // devices and FIFOs, as a squashed image drops them
}

/** The base image as an OCI archive (a tar of an image layout) named `name`: what `podman/docker load` read. */
async function writeArchive(base: Image, file: string, name: string): Promise<void> {
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        ...base.manifest.descriptor,
        annotations: { 'org.opencontainers.image.ref.name': name, 'io.containerd.image.name': name },
      },
    ],
  };
  const archive = pack();
  const add = (path: string, data: Buffer) => archive.entry({ name: path, mode: 0o644, mtime: new Date(0) }, data);
  const written = pipeline(archive, createWriteStream(file, { mode: 0o600 }));
  add('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}\n'));
  add('index.json', Buffer.from(JSON.stringify(index)));
  const blobs = new Map<string, Buffer>();
  for (const blob of [...base.layers, base.configBlob, base.manifest]) blobs.set(blob.descriptor.digest, blob.data);
  for (const [digest, data] of blobs) add(`blobs/sha256/${digest.replace(/^sha256:/, '')}`, data);
  archive.finalize();
  await written;
}
