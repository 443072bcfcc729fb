import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  applyMesh,
  buildBundle,
  manifestKind,
  parseMeshManifest,
  parseServiceManifest,
  recordImage,
  templateVariables,
  type AppliedSession,
  type ParsedMesh,
} from '../../manifests/index.js';
import { textSites } from '../../manifests/service.js';
import { usage } from '../errors.js';
import { veilHome } from '../home.js';
import { debugPlatforms } from './host.js';
import type { Io } from '../io.js';
import { meshCasEntry, meshUpload } from '../upload-mode.js';

const OPTIONS = {
  f: { type: 'string' },
  filename: { type: 'string' },
  t: { type: 'string' },
  'target-directory': { type: 'string' },
  p: { type: 'boolean' },
  'print-defaults': { type: 'boolean' },
  d: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  mode: { type: 'string' },
  release: { type: 'string' },
  cas: { type: 'string' },
  o: { type: 'string' },
  output: { type: 'string' },
  n: { type: 'boolean' },
  'no-push': { type: 'boolean' },
  'no-pull': { type: 'boolean' },
  'no-image': { type: 'boolean' },
  'set-version': { type: 'string' },
  'policy-namespace': { type: 'string' },
  platform: { type: 'string', multiple: true },
  v: { type: 'boolean', multiple: true },
  q: { type: 'boolean', multiple: true },
} as const;

/**
 * `veil apply -f service.yaml | mesh.yaml`: SCONE's `sconectl apply`, dispatching on the manifest's kind.
 * Options are SCONE's (-t, -p, --dry-run, --mode, --release, -o, -n/--no-push, --policy-namespace, ...);
 * `--set-version`, `--no-pull`, `-v` and `-q` are accepted so SCONE's scripts run, and change nothing.
 */
export async function applyCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS, allowPositionals: false, strict: true });
  const file = values.f ?? values.filename;
  if (!file) throw usage('no manifest given', 'veil apply -f service.yaml (or mesh.yaml)');
  const target = resolve(values.t ?? values['target-directory'] ?? 'target');
  const text = io.readFile(file);
  const mode = values.mode ?? 'production';
  if (mode !== 'production' && mode !== 'debug')
    throw usage(
      `--mode ${mode} is not production or debug`,
      'debug accepts simulation evidence (attestation mode none) and debug enclaves',
    );
  const printDefaults = values.p === true || values['print-defaults'] === true;
  if (manifestKind(text, file) === 'genservice') {
    const image = values['no-image'] ? undefined : { push: !(values.n === true || values['no-push'] === true) };
    return applyService(text, file, target, { printDefaults, image }, io);
  }
  const mesh = parseMeshManifest(text, file, target, {
    release: values.release,
    namespace: values['policy-namespace'],
  });
  if (printDefaults) return printMeshDefaults(mesh, io);
  const dryRun = values.d === true || values['dry-run'] === true;
  const output = values.o ?? values.output ?? 'helm_chart';
  if (output !== 'helm_chart' && output !== 'yaml')
    throw usage(
      `-o ${output} is not helm_chart or yaml`,
      'a Helm chart is always written; -o yaml also writes the manifests rendered with the default values',
    );
  const platforms = await debugPlatforms(mode, values.platform, io.env);
  const release = values.release ?? 'veil';
  const yaml = output === 'yaml';
  return applyMeshCommand(mesh, { target, mode, platforms, dryRun, cas: values.cas, release, yaml }, io);
}

async function applyService(
  text: string,
  file: string,
  target: string,
  opts: { printDefaults: boolean; image: { push: boolean } | undefined },
  io: Io,
): Promise<number> {
  const parsed = parseServiceManifest(text, file, dirname(resolve(file)));
  if (opts.printDefaults) {
    const m = parsed.manifest;
    for (const v of m.environment.global ?? [])
      io.out(
        `${v.name}: ${v.value === undefined ? 'REQUIRED (set it in the mesh env)' : `default ${JSON.stringify(v.value)}`}\n`,
      );
    for (const site of textSites(m))
      for (const v of templateVariables(site.text))
        io.out(
          `{{${v.name}}}: ${v.hasDefault ? `default ${JSON.stringify(v.defaultValue)}` : 'REQUIRED (set it in the mesh env)'}\n`,
        );
    return 0;
  }
  const { bundle, dir } = buildBundle(parsed, { target, keysDir: join(veilHome(io.env), 'shield-keys') });
  const shield = bundle.shield
    ? `, ${parsed.manifest.build.copy?.length ?? 0} path(s) encrypted (fspf tag ${bundle.shield.tag})`
    : '';
  io.out(
    `service ${bundle.name}: bundle ${dir} for image ${bundle.image}${shield}\n  program ${bundle.program}, measurement ${bundle.measurement}\n`,
  );
  if (!opts.image) return 0;
  const { build } = parsed.manifest;
  if ((build.run ?? []).length > 0 || build.requirements || parsed.manifest.requirements) {
    io.err(
      '[VEIL|WARNING] build.run and requirements are not executed: Veil builds images without a container engine, so the base image (build.from) must already contain what they install\n',
    );
  }
  const { buildServiceImage } = await import('../../images/index.js');
  const built = await buildServiceImage(
    {
      name: bundle.name,
      kind: bundle.kind,
      from: parsed.manifest.build.from,
      to: bundle.image,
      pwd: bundle.pwd,
      command: bundle.command,
      shieldDir: bundle.shield ? join(dir, bundle.shield.dir) : undefined,
    },
    {
      target,
      cacheDir: join(veilHome(io.env), 'cache'),
      push: opts.image.push,
      env: io.env,
      progress: progressPrinter(io),
    },
  );
  recordImage(dir, built);
  io.out(
    `image ${built.reference}@${built.digest} (${built.pushed ? 'pushed' : 'not pushed'}; OCI layout ${built.layout})\n  program in the image ${built.program}, measurement ${built.measurement}\n`,
  );
  return 0;
}

/** Progress of pulls and pushes on a terminal; in CI (no terminal) only the summary lines are printed. */
function progressPrinter(io: Io): ((line: string) => void) | undefined {
  return process.stderr.isTTY ? (line) => io.err(`  … ${line}\n`) : undefined;
}

function printMeshDefaults(mesh: ParsedMesh, io: Io): number {
  for (const s of mesh.services) {
    io.out(`service ${s.name} (session ${mesh.namespace}/${s.name}):\n`);
    for (const v of s.bundle.environment.global) {
      const value = s.variables.get(v.name);
      io.out(
        `  ${v.name}: ${value !== undefined ? `${JSON.stringify(value)} (mesh env)` : v.value !== undefined ? `default ${JSON.stringify(v.value)}` : 'REQUIRED — no value'}\n`,
      );
    }
  }
  return 0;
}

async function applyMeshCommand(
  mesh: ParsedMesh,
  opts: {
    target: string;
    mode: 'production' | 'debug';
    platforms: string[];
    dryRun: boolean;
    cas: string | undefined;
    release: string;
    yaml: boolean;
  },
  io: Io,
): Promise<number> {
  const keysDir = join(veilHome(io.env), 'shield-keys');
  // Sessions for the images when every service has one (Kubernetes), else for the bundles on this machine.
  const layout = mesh.services.every((s) => s.bundle.built) ? 'image' : 'local';
  const store = await meshUpload(mesh, { dryRun: opts.dryRun, cas: opts.cas }, io);
  try {
    const { sessions, plan } = await applyMesh(mesh, {
      target: opts.target,
      keysDir,
      mode: opts.mode,
      platforms: opts.platforms,
      layout,
      store: store.store,
      ...(store.encryption ? { encryption: store.encryption } : {}),
    });
    for (const s of sessions) io.out(sessionLine(s));
    const policies = join(opts.target, 'policies');
    const forWhat = `sessions for the ${layout === 'image' ? 'images' : 'bundles on this machine'}`;
    io.out(
      store.encryption?.only
        ? `encrypted policies written to ${policies} (*.encrypted.json, no plaintext policy; ${forWhat})\n`
        : `policies written to ${policies} (secret values left out; ${forWhat})\n`,
    );
    if (store.note) io.out(`  note: ${store.note}\n`);
    const { chartServices, chartValues, pullSecrets, writeChart, writeManifests } = await import('../../helm/index.js');
    const { cas } = meshCasEntry(mesh);
    const values = chartValues({
      casAddress: casAddress(opts.cas ?? cas.cas_url),
      casFingerprint: store.fingerprint ?? cas.cas_key,
      imagePullSecrets: pullSecrets(mesh),
      services: chartServices(mesh, plan),
      mode: opts.mode,
    });
    writeChart(join(opts.target, 'helm'), mesh.namespace, values);
    io.out(
      `Helm chart written to ${join(opts.target, 'helm')} (helm install ${opts.release} ${join(opts.target, 'helm')})\n`,
    );
    if (layout === 'local')
      io.out(
        '  note: not every service has an image yet (veil apply -f service.yaml builds them): the chart names unbuilt images, and the sessions are for this machine\n',
      );
    if (opts.yaml)
      io.out(`manifests written: ${writeManifests(join(opts.target, 'manifests'), values, opts.release).join(', ')}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

function sessionLine(s: AppliedSession): string {
  const hash = s.hash ? ` (hash ${s.hash})` : '';
  const envelope = s.envelope ? `, encrypted to the CAS (${s.envelope})` : '';
  return `session ${s.name}: ${s.action}${hash}${envelope}\n`;
}

/** SCONE_CAS_ADDR is host[:port]. */
function casAddress(url: string): string {
  return url.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}
