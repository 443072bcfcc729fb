import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import type { BuildSteps } from '../images/build-steps.js';
import { INSTALL_HINT, findEngine, type Engine } from '../images/engine.js';
import { ManifestError, type ParsedService } from '../manifests/index.js';
import type { Io } from './io.js';

/** The largest requirements file given to pip (it is read into memory and written to the container's stdin). */
export const REQUIREMENTS_MAX_BYTES = 1024 * 1024;

/**
 * `build.requirements` (or the top-level `requirements` some tutorials write) and `build.run` of a service, with
 * the engine that runs them. Without an engine they are skipped with a warning that says how to get one.
 * `privateDirs` (VEIL_HOME, the target directory) may not hold the requirements file: its lines reach pip,
 * whose errors quote them.
 */
export function serviceSteps(
  parsed: ParsedService,
  io: Io,
  cwd = process.cwd(),
  find: (env: NodeJS.ProcessEnv) => Engine | undefined = findEngine,
  privateDirs: string[] = [],
): { steps?: Omit<BuildSteps, 'forbidden'>; engine?: Engine } {
  const { build } = parsed.manifest;
  const requirements = build.requirements ?? parsed.manifest.requirements;
  const run = build.run ?? [];
  if (run.length === 0 && !requirements) return {};
  const engine = find(io.env);
  if (!engine) {
    io.err(
      `[VEIL|WARNING] build.run and requirements are not executed: no container engine (${
        io.env.VEIL_CONTAINER_ENGINE === 'none' ? 'VEIL_CONTAINER_ENGINE=none' : 'neither podman nor docker is on PATH'
      }), so the base image (build.from) must already contain what they install; to run them, ${INSTALL_HINT}\n`,
    );
    return {};
  }
  const plaintext = plaintextDigests(parsed);
  if (!requirements) return { steps: { run, plaintext }, engine };
  return { steps: { run, requirements: requirementsIn(parsed, requirements, cwd, privateDirs), plaintext }, engine };
}

/** SHA-256 of every file `build.copy` names (directories walked), by its name there. */
function plaintextDigests(parsed: ParsedService): Map<string, string> {
  const digests = new Map<string, string>();
  const walk = (path: string, name: string): void => {
    const stat = statSync(path);
    if (stat.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e), `${name}/${e}`);
    else if (stat.isFile()) digests.set(createHash('sha256').update(readFileSync(path)).digest('hex'), name);
  };
  for (const [i, name] of (parsed.manifest.build.copy ?? []).entries()) walk(parsed.copyFrom[i]!, name);
  return digests;
}

/**
 * Looked up as `build.copy` is: in the working directory, then beside the manifest. Only its bytes are taken
 * (pip reads them on stdin); a file it includes with -r/-c would be looked up inside the container, so it is refused.
 */
function requirementsIn(
  parsed: ParsedService,
  file: string,
  cwd: string,
  privateDirs: string[],
): { name: string; content: Buffer } {
  const field = parsed.manifest.build.requirements === undefined ? 'requirements' : 'build.requirements';
  const refuse = (
    message: string,
    hint = 'name the pip requirements file relative to the manifest (or the working directory)',
  ) => new ManifestError('MANIFEST_REFERENCE', [{ path: field, message }], parsed.file, { hint });
  if (isAbsolute(file) || normalize(file).split(/[\\/]/)[0] === '..')
    throw refuse(`'${file}' must be relative, inside the working directory or the manifest's directory`);
  const roots = [...new Set([resolve(cwd), resolve(parsed.dir)])];
  const root = roots.find((r) => existsSync(join(r, file)) && statSync(join(r, file)).isFile());
  if (!root) throw refuse(`'${file}' is not a file (looked in ${roots.join(' and ')})`);
  const real = realpathSync(join(root, file));
  if (!inside(real, realpathSync(root))) throw refuse(`'${file}' is a link to ${real}, outside ${root}`);
  if (privateDirs.some((d) => existsSync(d) && inside(real, realpathSync(d))))
    throw refuse(`'${file}' lies in VEIL_HOME or the target directory, whose files stay on this machine`);
  // Its bytes go to the base image's pip, which the manifest names: a dot-file (.npmrc, .env, .git/config) holds
  // credentials far more often than package names, so it is not taken for a requirements file.
  if (
    normalize(file)
      .split(/[\\/]/)
      .some((part) => part.startsWith('.') && part !== '.')
  )
    throw refuse(
      `'${file}' is a hidden file (or lies in a hidden directory), which Veil does not hand to the build`,
      'name a requirements file such as requirements.txt',
    );
  if (statSync(real).size > REQUIREMENTS_MAX_BYTES)
    throw refuse(
      `'${file}' is larger than ${REQUIREMENTS_MAX_BYTES / 1024} KiB`,
      'a requirements file is a list of packages: keep it small',
    );
  const content = readFileSync(real);
  const include = includedFile(content.toString('utf8'));
  if (include !== undefined)
    throw refuse(
      `'${file}' includes another file (${include}): only the requirements file itself is given to pip`,
      'put the included requirements or constraints into this one file',
    );
  return { name: normalize(file), content };
}

const inside = (path: string, dir: string) => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

/**
 * The first `-r`/`-c` (or `--requirement`/`--constraint`, which pip also takes abbreviated) line, comments and
 * continuations as pip reads them; undefined when there is none.
 */
export function includedFile(text: string): string | undefined {
  const lines = text.replace(/\\\r?\n/g, '').split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    const option = /^(-[rc]|--[a-z-]+)(?:[=\s]|$)|^(-[rc])\S/.exec(line);
    if (!option) continue;
    const name = option[1] ?? option[2]!;
    const long = name.startsWith('--') && name.length > 4;
    if (
      name === '-r' ||
      name === '-c' ||
      (long && ('--requirement'.startsWith(name) || '--constraint'.startsWith(name)))
    )
      return line;
  }
  return undefined;
}
