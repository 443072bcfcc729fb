import { dirname, join, resolve } from 'node:path';
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
import { checkRelease } from '../../helm/rules.js';
import { usage } from '../errors.js';
import { veilHome } from '../home.js';
import { debugPlatforms } from './host.js';
import type { Io } from '../io.js';
import { defineCommand, helpText, type Parsed } from '../spec.js';
import { meshCasEntry } from '../mesh-cas.js';
import { meshUpload } from '../upload-mode.js';
import { serviceSteps } from '../service-steps.js';

const SERVICE = ['genservice'];
const MESH = ['mesh'];

const OPTIONS = {
  filename: { type: 'string', short: 'f', value: 'FILE', description: 'the manifest (kind: genservice or mesh)' },
  'target-directory': {
    type: 'string',
    short: 't',
    value: 'DIR',
    description: 'where bundles, policies and charts go (default ./target)',
  },
  'print-defaults': {
    type: 'boolean',
    short: 'p',
    description: 'print every variable: its value, default, or REQUIRED',
  },
  'dry-run': { type: 'boolean', short: 'd', description: 'write the sessions, do not upload them' },
  mode: { type: 'string', value: 'MODE', description: 'production (default) or debug (simulation evidence accepted)' },
  'no-push': { type: 'boolean', only: SERVICE, description: 'build the image as an OCI layout only' },
  'no-image': { type: 'boolean', only: SERVICE, description: 'the bundle only, no image' },
  n: { type: 'boolean', description: 'kind genservice: --no-push; kind mesh: --no-pull' },
  release: {
    type: 'string',
    only: MESH,
    value: 'R',
    description: 'the Helm release name (default veil): a DNS-1035 label of at most 53 characters',
  },
  cas: { type: 'string', only: MESH, value: 'URL', description: 'upload to this CAS instead of cas[].cas_url' },
  output: {
    type: 'string',
    short: 'o',
    only: MESH,
    value: 'OUT',
    description:
      'helm_chart (default) or yaml (also target/manifests); a Helm chart is always written. Only helm install ' +
      "checks that no other release of the namespace owns an alias Service; kubectl apply of the yaml doesn't",
  },
  'no-pull': { type: 'boolean', only: MESH, description: 'accepted: Veil pulls no service image to apply a mesh' },
  'policy-namespace': { type: 'string', only: MESH, value: 'NS', description: 'overrides policy.namespace' },
  platform: {
    type: 'string',
    multiple: true,
    only: MESH,
    value: 'HOST-ID',
    description: 'debug: another host whose simulation evidence the sessions accept',
  },
  'set-version': { type: 'string', value: 'V', description: "accepted (SCONE's image version): changes nothing" },
  v: { type: 'boolean', multiple: true, description: 'accepted: more output (changes nothing)' },
  q: { type: 'boolean', multiple: true, description: 'accepted: less output (changes nothing)' },
  'helm-template': {
    type: 'string',
    short: 'h',
    value: 'DIR',
    description: 'not supported by Veil: its chart comes from built-in templates',
  },
  maa: { type: 'string', only: MESH, value: 'URL', description: 'not supported by Veil: Azure MAA attestation' },
  otp: { type: 'string', only: MESH, value: 'OTP', description: 'not supported by Veil: cosign signing' },
} as const;

type Values = Parsed<typeof OPTIONS>['values'];

/**
 * `veil apply -f service.yaml | mesh.yaml`: SCONE's `sconectl apply`, dispatching on the manifest's kind.
 * Options are SCONE's (-t, -p, --dry-run, --mode, --release, -o, -n/--no-push, --policy-namespace, ...);
 * `--set-version`, `--no-pull`, `-v` and `-q` are accepted so SCONE's scripts run, and change nothing.
 */
export const apply = defineCommand(
  {
    name: 'apply',
    usage: [
      '-f service.yaml [-t DIR] [-p] [--no-push | --no-image]      (kind genservice: bundle + OCI image)',
      '-f mesh.yaml [-t DIR] [-p] [--dry-run] [--mode production|debug] [--cas URL] [--release R] [-o yaml]',
    ],
    summary: "SCONE's sconectl apply: a service manifest into a bundle and image, a mesh into sessions and a chart",
    options: OPTIONS,
    notes: ["'veil apply -f FILE --help' lists the options of that manifest's kind only."],
  },
  (parsed, io) => applyCommand(parsed.values, io),
  { variantHelp: (parsed, io) => kindHelp(parsed.values, io) },
);

function kindHelp(values: Values, io: Io): string | undefined {
  if (!values.filename) return undefined;
  const kind = manifestKind(io.readFile(values.filename), values.filename);
  return helpText({ ...apply.spec, usage: [apply.spec.usage[kind === 'mesh' ? 1 : 0]!] }, kind);
}

const REFUSED = {
  'helm-template': 'Veil writes its chart from built-in templates (target/helm; override values with --set)',
  maa: 'Veil verifies Azure evidence itself (az-snp-vtpm, az-tdx-vtpm), it does not call MAA',
  otp: 'Veil does not sign images with cosign',
} as const;

/** An option of the other kind is a mistake, never silently ignored; SCONE's options Veil lacks say why. */
function checkKind(values: Values, kind: 'genservice' | 'mesh'): void {
  for (const [name, why] of Object.entries(REFUSED))
    if (values[name as keyof Values] !== undefined)
      throw usage(`--${name} is not supported by Veil: ${why}`, 'drop the option');
  for (const name of Object.keys(values)) {
    const only = (OPTIONS as Record<string, { only?: readonly string[] }>)[name]?.only;
    if (only && !only.includes(kind))
      throw usage(
        `--${name} applies to kind: ${only.join(', ')} manifests, and ${values.filename} is kind: ${kind}`,
        `'veil apply -f ${values.filename} --help' lists the options of kind ${kind}`,
      );
  }
}

async function applyCommand(values: Values, io: Io): Promise<number> {
  const file = values.filename;
  if (!file) throw usage('no manifest given', 'veil apply -f service.yaml (or mesh.yaml)');
  const target = resolve(values['target-directory'] ?? 'target');
  const text = io.readFile(file);
  const mode = values.mode ?? 'production';
  if (mode !== 'production' && mode !== 'debug')
    throw usage(
      `--mode ${mode} is not production or debug`,
      'debug accepts simulation evidence (attestation mode none) and debug enclaves',
    );
  const printDefaults = values['print-defaults'] === true;
  const kind = manifestKind(text, file);
  checkKind(values, kind);
  // Before anything is uploaded: the release prefixes the names of the chart's Deployments and Services.
  if (values.release !== undefined) checkRelease(values.release);
  if (kind === 'genservice') {
    const image = values['no-image'] ? undefined : { push: !(values.n === true || values['no-push'] === true) };
    return applyService(text, file, target, { printDefaults, image }, io);
  }
  const mesh = parseMeshManifest(text, file, target, {
    release: values.release,
    namespace: values['policy-namespace'],
  });
  if (printDefaults) return printMeshDefaults(mesh, io);
  const dryRun = values['dry-run'] === true;
  const output = values.output ?? 'helm_chart';
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
  const { steps, engine } = serviceSteps(parsed, io, process.cwd(), undefined, [veilHome(io.env), target]);
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
      steps,
    },
    {
      target,
      cacheDir: join(veilHome(io.env), 'cache'),
      push: opts.image.push,
      env: io.env,
      progress: progressPrinter(io),
      engine,
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
    const helm = await import('../../helm/index.js');
    const { chartServices, chartValues, inClusterCasAddress, pullSecrets, writeChart, writeManifests } = helm;
    const { aliasCollisionNote, aliasServices } = helm;
    const { cas } = meshCasEntry(mesh);
    const address = inClusterCasAddress(casAddress(opts.cas ?? cas.cas_url));
    if (address.warning) io.err(`[VEIL|WARNING] ${address.warning}\n`);
    const values = chartValues({
      casAddress: address.address,
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
    if (opts.yaml) {
      io.out(`manifests written: ${writeManifests(join(opts.target, 'manifests'), values, opts.release).join(', ')}\n`);
      const aliases = aliasServices(values);
      if (aliases.length) io.err(`[VEIL|NOTE] ${aliasCollisionNote(aliases, opts.release)}\n`);
    }
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
