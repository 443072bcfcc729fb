import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseSession, splitCommand } from '../../policy/index.js';
import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { chosenIdentity, pinnedCas, veilHome, type LocalIdentity } from '../home.js';
import type { Io } from '../io.js';
import {
  DEFAULT_TEMPLATE,
  cmdHook,
  envVarsHook,
  finishSession,
  listHook,
  parseDocument,
  redactedCopy,
  renderTemplate,
  sconeSettings,
} from '../sconify-session.js';
import { defineCommand, type Parsed } from '../spec.js';
import { debugPlatforms } from './host.js';

const OPTIONS = {
  from: { type: 'string', value: 'NATIVE_IMAGE', description: 'the image to sconify (registry, or oci:DIR:TAG)' },
  to: { type: 'string', value: 'TO_IMAGE', description: 'the confidential image to write (and push)' },
  binary: { type: 'string', value: 'PATH', description: 'the program in the image that runs and is measured' },
  dir: { type: 'string', multiple: true, value: 'DIRECTORY', description: 'a directory to encrypt (repeatable)' },
  plain: { type: 'string', multiple: true, value: 'DIRECTORY', description: 'a directory kept as it is' },
  name: { type: 'string', value: 'SESSION', description: 'the session name (default: TO_IMAGE without /)' },
  namespace: { type: 'string', value: 'NAMESPACE', description: 'the namespace (default veil-<random>)' },
  'create-namespace': { type: 'boolean', description: 'create the namespace session first (CREATOR only)' },
  cas: { type: 'string', value: 'ADDR', description: 'the CAS (attested with veil cas attest); or --dry-run' },
  'service-name': { type: 'string', value: 'NAME', description: "the service's name (default service)" },
  template: {
    type: 'string',
    value: 'TEMPLATE_FILE',
    description: "a session template with the script's hooks (default: the script's session-template.yml)",
  },
  session: {
    type: 'string',
    value: 'SESSION_FILE',
    description: 'where the rendered session is written (default target/sconify/SESSION/session.yml)',
  },
  secrets: { type: 'string', value: 'YAML|FILE', description: 'secrets: YAML text as the script takes it, or a file' },
  injectedfiles: {
    type: 'string',
    value: 'YAML|FILE',
    description: 'injection_files of the image: YAML text, or a file',
  },
  heap: {
    type: 'string',
    value: 'SCONE_HEAP',
    description: 'SCONE_HEAP in [8388608, 64424509440], kKmMgG (see below)',
  },
  stack: { type: 'string', value: 'SCONE_STACK', description: 'SCONE_STACK in [32768, 8388608], kKmMgG (see below)' },
  dlopen: { type: 'string', value: '0|1|2', description: 'SCONE_ALLOW_DLOPEN (see below)' },
  'dry-run': { type: 'boolean', description: 'build the image and write the session, upload nothing' },
  'push-image': { type: 'boolean', description: 'push TO_IMAGE (else: OCI layout only)' },
  t: { type: 'string', value: 'DIR', description: 'target directory (default ./target)' },
  mode: { type: 'string', value: 'MODE', description: 'production (default) or debug (simulation evidence)' },
  platform: { type: 'string', multiple: true, value: 'HOST-ID', description: 'debug: another host to accept' },
  command: { type: 'string', value: 'COMMAND', description: "the service's command instead of the image's" },
  env: { type: 'string', multiple: true, value: 'KEY=VALUE', description: "added to the image's environment" },
  log: { type: 'string', value: 'LEVEL', description: 'SCONE_LOG in the environment (the template says 7)' },
  identity: { type: 'string', value: 'DIR', description: 'the identity that owns the session (default $VEIL_HOME)' },
  base: { type: 'string', value: 'BASE', description: 'not supported by Veil (see below)' },
  cli: { type: 'string', value: 'CLI', description: 'not supported by Veil (see below)' },
  trace: { type: 'string', value: 'TRACE_FILE', description: 'not supported by Veil (see below)' },
  las: { type: 'string', value: 'LAS_ADDR', description: 'not supported by Veil (see below)' },
} as const;

const NOTES = [
  'Hooks a --template may use (envsubst, as the script): $SCONE_FSPF_KEY $SCONE_FSPF_TAG $SESSION $MRENCLAVE',
  '  $ENVVARS $CMD $SECRETS $INJECTED_FILES $NAMESPACE. $ENVVARS: the image\'s Env as quoted "KEY": "value"',
  '  lines and its WorkingDir as "pwd:"; --secrets/--injectedfiles text is inserted as given (a plain list is',
  "  wrapped in secrets: / injection_files:). Any fspf_path is set to where Veil's image keeps the shield.",
  '--session writes the session with $SCONE_FSPF_KEY in place of the shield key (it stays 0600 in',
  '  $VEIL_HOME/shield-keys/TAG.key) and any other secret value left out.',
  "--heap, --stack, --dlopen: validated as sconify_image documents and put into the service's environment as",
  "  SCONE_HEAP, SCONE_STACK, SCONE_ALLOW_DLOPEN (given ones only; the script's defaults 1G/4M/2 only shape its",
  '  MRENCLAVE). Veil runs the program as an ordinary process: it has no enclave heap or stack to size and no',
  '  dlopen rule, so they change neither the measurement nor the limits; the program sees them as environment.',
  '--base, --cli: not supported by Veil. The script builds FROM the SCONE base image (its runtime) and runs',
  '  scone fspf in the CLI image; Veil keeps the native image (squashed), adds its own runtime layer (with its',
  '  own Node.js and C library) and encrypts in-process, so neither image is used. Drop them.',
  '--trace: not supported by Veil; the script never reads the trace file either. --las: not supported by Veil;',
  '  its runtime collects evidence itself (configfs-tsm) and there is no LAS.',
];

/** SCONE's options that cannot apply, and why (the script's help lists them as required or optional). */
const REFUSED: Record<string, string> = {
  base: "Veil's runtime layer brings its own Node.js and C library, so no SCONE base image is used",
  cli: 'Veil encrypts the directories itself; no SCONE CLI image runs',
  trace: 'the script never reads the trace file; Veil shields the --dir directories whole',
  las: 'the runtime collects TEE evidence itself (configfs-tsm); there is no LAS',
};

/**
 * `veil sconify --from IMAGE --to IMAGE --binary PATH --dir DIR...`: SCONE's sconify_image. Unlike the
 * original script, every documented option is parsed or refused, the CAS must be named (and attested),
 * the command comes from the image's exec form, and the target directory may exist. Prints
 * `NAMESPACE/SESSION` (alone on stdout); the config ID is `NAMESPACE/SESSION/<service-name>`.
 */
export const sconify = defineCommand(
  {
    name: 'sconify',
    usage: [
      '--from IMAGE --to IMAGE --binary PATH --dir DIR... [--cas ADDR] [--namespace NS] [--create-namespace]',
      '[--template FILE] [--session FILE] [--secrets YAML|FILE] [--injectedfiles YAML|FILE] [--heap N]',
    ],
    summary: "SCONE's sconify_image: an existing image made confidential, and its session uploaded",
    options: OPTIONS,
    notes: NOTES,
  },
  (parsed, io) => sconifyCommand(parsed.values, io),
);

type Values = Parsed<typeof OPTIONS>['values'];

async function sconifyCommand(values: Values, io: Io): Promise<number> {
  for (const [option, why] of Object.entries(REFUSED))
    if (values[option as keyof Values] !== undefined)
      throw usage(`--${option} is not supported by Veil: ${why}`, `drop --${option} ('veil sconify --help')`);
  for (const required of ['from', 'to', 'binary'] as const)
    if (!values[required])
      throw usage(
        `--${required} is required`,
        'veil sconify --from NATIVE_IMAGE --to IMAGE --binary /usr/bin/python3 --dir /app --cas HOST:8081',
      );
  if (!values['dry-run'] && !values.cas)
    throw usage(
      '--cas is required to upload the session',
      "name the CAS (attested with 'veil cas attest'), or pass --dry-run",
    );
  const mode = values.mode ?? 'production';
  if (mode !== 'production' && mode !== 'debug')
    throw usage(
      `--mode ${mode} is not production or debug`,
      'debug accepts simulation evidence (attestation mode none), for machines without a TEE',
    );
  const settings = { ...sconeSettings(values), ...(values.log === undefined ? {} : { SCONE_LOG: values.log }) };
  const extraEnv = keyValues(values.env ?? []);
  const command = values.command === undefined ? undefined : splitCommand(values.command, '--command');
  const identity = chosenIdentity(values.identity, io.env);
  const template = values.template === undefined ? DEFAULT_TEMPLATE : io.readFile(values.template);
  const secrets = listHook(values.secrets, io, 'secrets');
  const injected = listHook(values.injectedfiles, io, 'injectedfiles');
  const platforms = await debugPlatforms(mode, values.platform, io.env);
  const target = resolve(values.t ?? 'target');
  const name = sessionPart(values.name ?? values.to!.replace(/\//g, ''));
  const namespace = sessionPart(values.namespace ?? `veil-${randomBytes(4).toString('hex')}`);
  const { sconifyImage } = await import('../../images/index.js');
  const built = await sconifyImage(
    {
      from: values.from!,
      to: values.to!,
      binary: values.binary!,
      dirs: values.dir ?? [],
      plain: values.plain ?? [],
      name,
    },
    {
      target,
      cacheDir: join(veilHome(io.env), 'cache'),
      keysDir: join(veilHome(io.env), 'shield-keys'),
      push: values['push-image'] === true,
      env: io.env,
      ...(process.stderr.isTTY ? { progress: (l: string) => io.err(`  … ${l}\n`) } : {}),
    },
  );
  io.err(
    `image ${built.reference}@${built.digest} (${built.pushed ? 'pushed' : 'not pushed: --push-image pushes it'}; OCI layout ${built.layout})\n`,
  );
  const rendered = renderTemplate(template, {
    SCONE_FSPF_KEY: built.fspf.key,
    SCONE_FSPF_TAG: built.fspf.tag,
    SESSION: name,
    NAMESPACE: namespace,
    MRENCLAVE: built.measurement,
    ENVVARS: envVarsHook({ ...built.environment, ...extraEnv }, built.pwd),
    CMD: cmdHook(command ?? built.command),
    SECRETS: secrets,
    INJECTED_FILES: injected,
  });
  const file = values.template ?? 'the default session template';
  const doc = parseDocument(rendered);
  if (doc.errors.length > 0) parseSession(rendered, { file }); // the policy parser names the YAML error and line
  const notes = finishSession(doc, {
    fspfPath: built.fspf.path,
    fspfTag: built.fspf.tag,
    ...(values['service-name'] ? { serviceName: values['service-name'] } : {}),
    debug: mode === 'debug',
    platforms,
    extraEnv: settings,
  });
  for (const note of notes) io.err(`[VEIL|NOTE] ${note}\n`);
  const text = doc.toString();
  const session = parseSession(text, { file: `${file} (rendered)` });
  const sessionFile = values.session ?? join(target, 'sconify', name, 'session.yml');
  mkdirSync(dirname(resolve(sessionFile)), { recursive: true });
  writeFileSync(
    sessionFile,
    `# upload with: veil session update ${sessionFile} -e SCONE_FSPF_KEY=${keyCommand(built.fspf.tag)}\n` +
      redactedCopy(doc, built.fspf.tag),
  );
  if (!values['dry-run'])
    await upload(values.cas!, namespace, session.name, text, values['create-namespace'] === true, identity, io);
  io.out(`${session.name}\n`);
  return 0;
}

async function upload(
  cas: string,
  namespace: string,
  name: string,
  text: string,
  createNamespace: boolean,
  identity: LocalIdentity,
  io: Io,
): Promise<void> {
  const home = veilHome(io.env);
  const client = new CasClient(pinnedCas(home, cas), identity);
  try {
    if (createNamespace && !(await client.currentHash(namespace))) {
      await client.postSession(
        JSON.stringify({
          name: namespace,
          version: '0.3',
          access_policy: { read: ['CREATOR'], update: ['CREATOR'], create_sessions: ['CREATOR'] },
        }),
      );
    }
    if (!(await client.currentHash(namespace))) {
      throw new CliError('CLI_CAS_ERROR', `namespace '${namespace}' does not exist on the CAS`, {
        hint: 'pass --create-namespace, or name an existing namespace you may create sessions in',
      });
    }
    const predecessor = await client.currentHash(name);
    if (!predecessor) await client.postSession(text);
    else {
      const doc = parseDocument(text);
      doc.set('predecessor', predecessor);
      await client.postSession(doc.toString());
    }
  } finally {
    await client.close();
  }
}

function keyCommand(tag: string): string {
  return `$(cat $VEIL_HOME/shield-keys/${tag}.key)`;
}

/** `--env KEY=VALUE` (repeatable), as sconify_image's Standard Edition takes it. */
function keyValues(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair.slice(0, eq)))
      throw usage(`--env '${pair}' is not KEY=VALUE`, 'e.g. --env GREETING=hello');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function sessionPart(text: string): string {
  return text.replace(/[^A-Za-z0-9_\-.~]/g, '-').slice(0, 128);
}
