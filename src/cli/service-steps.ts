import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import type { BuildSteps } from '../images/build-steps.js';
import { INSTALL_HINT, findEngine, type Engine } from '../images/engine.js';
import { ManifestError, type ParsedService } from '../manifests/index.js';
import type { Io } from './io.js';

/**
 * `build.requirements` (or the top-level `requirements` some tutorials write) and `build.run` of a service, with
 * the engine that runs them. Without an engine they are skipped with a warning that says how to get one.
 */
export function serviceSteps(
  parsed: ParsedService,
  io: Io,
  cwd = process.cwd(),
  find: (env: NodeJS.ProcessEnv) => Engine | undefined = findEngine,
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
  if (!requirements) return { steps: { run, context: resolve(parsed.dir), plaintext }, engine };
  return { steps: { run, ...requirementsIn(parsed, requirements, cwd), plaintext }, engine };
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

/** Looked up as `build.copy` is: in the working directory, then beside the manifest; that directory is the context. */
function requirementsIn(parsed: ParsedService, file: string, cwd: string): { requirements: string; context: string } {
  const field = parsed.manifest.build.requirements === undefined ? 'requirements' : 'build.requirements';
  const refuse = (message: string) =>
    new ManifestError('MANIFEST_REFERENCE', [{ path: field, message }], parsed.file, {
      hint: 'name the pip requirements file relative to the manifest (or the working directory)',
    });
  if (isAbsolute(file) || normalize(file).split(/[\\/]/)[0] === '..')
    throw refuse(`'${file}' must be relative, inside the working directory or the manifest's directory`);
  const roots = [...new Set([resolve(cwd), resolve(parsed.dir)])];
  const root = roots.find((r) => existsSync(join(r, file)) && statSync(join(r, file)).isFile());
  if (!root) throw refuse(`'${file}' is not a file (looked in ${roots.join(' and ')})`);
  return { requirements: normalize(file), context: root };
}
