import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { codeTreeDigest, simulationMeasurement } from '../attestation/index.js';
import { CONTAINER_SHIELD_ROOT, RUNTIME_ROOT } from '../runtime/index.js';
import { ImageError } from './errors.js';
import { assembleImage, pullImage, pushImage, writeImage, type Image } from './image.js';
import { programInImage } from './image-files.js';
import { runBuildSteps, type BuildSteps } from './build-steps.js';
import { buildNetwork, type Engine } from './engine.js';
import { buildLayer, type Layer, type LayerEntry } from './layer.js';
import { ImageLayout } from './layout.js';
import { formatReference, parseReference } from './reference.js';
import { RUNTIME_DIR, runtimeEntrypoint, runtimeLayer } from './runtime-layer.js';

/** In images, the shielded copy of a directory D lives at SHIELD_ROOT + D; the runtime decrypts it into D. */
export const SHIELD_ROOT = CONTAINER_SHIELD_ROOT;
const DEFAULT_BASE: Record<string, string | undefined> = { python: 'docker.io/library/python:3.11-slim-bookworm' };
/** Everything Veil adds to an image lives below this. */
const VEIL_ROOT = '/opt/veil';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ServiceImageInput {
  name: string;
  kind: string;
  /** `build.from` */
  from?: string | undefined;
  /** `build.to` */
  to: string;
  pwd: string;
  command: string[];
  /** The bundle's encrypted tree (`target/services/<name>/app`), if the service copies files. */
  shieldDir?: string | undefined;
  /** `build.requirements` and `build.run`, run in the base image when an engine is given. */
  steps?: Omit<BuildSteps, 'forbidden'> | undefined;
}

export interface BuiltImage {
  reference: string;
  digest: string;
  layout: string;
  program: string;
  measurement: string;
  pushed: boolean;
}

/**
 * The service's OCI image: the base image's layers, the Veil runtime (entrypoint), and the encrypted
 * application. Written as an OCI layout under `<target>/oci/<name>` and pushed to `build.to` unless told not to.
 * The configuration holds the base's environment and no secret: secrets reach the program only from the CAS.
 */
export async function buildServiceImage(
  input: ServiceImageInput,
  opts: {
    target: string;
    cacheDir: string;
    push: boolean;
    env?: NodeJS.ProcessEnv;
    progress?: (line: string) => void;
    /** Runs `input.steps`; without one they are not run (the caller warns). */
    engine?: Engine | undefined;
  },
): Promise<BuiltImage> {
  const baseName = input.from ?? DEFAULT_BASE[input.kind];
  if (!baseName)
    throw new ImageError('IMAGE_REFERENCE', `build.kind '${input.kind}' has no default base image`, {
      hint: 'give build.from: an image that contains the program',
    });
  const ref = parseReference(input.to);
  const progress = opts.progress ?? (() => undefined);
  progress(`pulling ${baseName}`);
  const base = baseName === 'scratch' ? undefined : await pullImage(parseReference(baseName), opts.env);
  const pathVar = envValue(base?.config.config.Env, 'PATH') ?? DEFAULT_PATH;
  const steps = opts.engine && input.steps ? await stepsLayer(base, input, opts.engine, opts) : undefined;
  // The program is measured as the container will find it: after the steps, which may install or replace it.
  const program = await programInImage(
    [...(base?.layers ?? []), ...(steps ? [steps] : [])],
    input.command[0]!,
    pathVar,
  );
  const measurement = simulationMeasurement(codeTreeDigest(RUNTIME_ROOT), program.data);
  progress('building the runtime and application layers');
  const layers = [
    ...(steps ? [steps] : []),
    await runtimeLayer(opts.cacheDir),
    ...(input.shieldDir ? [await buildLayer(shieldEntries(input.shieldDir, input.pwd))] : []),
  ];
  const image = assembleImage(
    base,
    layers,
    (config) => ({
      ...config,
      Entrypoint: runtimeEntrypoint(),
      Cmd: [input.command[0]!],
      WorkingDir: input.pwd,
      Labels: {
        ...(config.Labels ?? {}),
        'org.opencontainers.image.title': input.name,
        'dev.veil.measurement': measurement,
        'dev.veil.program': program.path,
      },
    }),
    [
      ...(steps ? ['build.requirements and build.run'] : []),
      `veil runtime (${RUNTIME_DIR})`,
      ...(input.shieldDir ? [`veil shield of ${input.pwd} (${SHIELD_ROOT}${input.pwd})`] : []),
    ],
  );
  const layout = join(opts.target, 'oci', input.name);
  writeImage(new ImageLayout(layout), ref.tag ?? 'latest', image);
  if (opts.push) {
    progress(`pushing ${formatReference(ref)}`);
    await pushImage(ref, image, { ...(opts.env ? { env: opts.env } : {}), progress });
  }
  return {
    reference: formatReference(ref),
    digest: image.manifest.descriptor.digest,
    layout,
    program: program.path,
    measurement,
    pushed: opts.push,
  };
}

async function stepsLayer(
  base: Image | undefined,
  input: ServiceImageInput,
  engine: Engine,
  opts: { env?: NodeJS.ProcessEnv; progress?: (line: string) => void },
): Promise<Layer> {
  if (!base)
    throw new ImageError('IMAGE_REFERENCE', 'build.run and requirements need a base image with /bin/sh, not scratch', {
      hint: 'give build.from: an image with a shell and what the steps use',
    });
  const env = opts.env ?? process.env;
  const network = buildNetwork(env);
  // What Veil's layers bring, and the directory the decrypted application replaces, the steps may not change.
  const forbidden = [VEIL_ROOT, ...(input.shieldDir && input.pwd !== '/' ? [input.pwd] : [])];
  opts.progress?.(`running build.requirements and build.run with ${engine.name}`);
  return runBuildSteps(base, { ...input.steps!, forbidden }, engine, { env, network });
}

function shieldEntries(dir: string, pwd: string): LayerEntry[] {
  const target = `${SHIELD_ROOT}${pwd === '/' ? '' : pwd}`;
  return readdirSync(dir)
    .sort()
    .map(
      (name): LayerEntry => ({
        type: 'file',
        path: `${target}/${name}`,
        mode: 0o644,
        data: readFileSync(join(dir, name)),
      }),
    );
}

function envValue(env: string[] | undefined, name: string): string | undefined {
  return env?.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
}

export type { Image };
