import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { parseSession } from '../../policy/index.js';
import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { loadIdentity, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';
import { debugPlatforms } from './host.js';

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  binary: { type: 'string' },
  dir: { type: 'string', multiple: true },
  plain: { type: 'string', multiple: true },
  name: { type: 'string' },
  namespace: { type: 'string' },
  'create-namespace': { type: 'boolean' },
  cas: { type: 'string' },
  'service-name': { type: 'string' },
  secrets: { type: 'string' },
  injectedfiles: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'push-image': { type: 'boolean' },
  t: { type: 'string' },
  mode: { type: 'string' },
  platform: { type: 'string', multiple: true },
} as const;

/** SCONE's own default tolerations for sconified images (session-template.yml). */
const TOLERATE = ['debug-mode', 'hyperthreading', 'insecure-igpu', 'outdated-tcb', 'software-hardening-needed'];

/**
 * `veil sconify --from IMAGE --to IMAGE --binary PATH --dir DIR...`: SCONE's sconify_image. Unlike the
 * original script, every documented option is parsed or refused, the CAS must be named (and attested),
 * the command comes from the image's exec form, and the target directory may exist. Prints
 * `NAMESPACE/SESSION` (alone on stdout); the config ID is `NAMESPACE/SESSION/<service-name>`.
 */
export async function sconifyCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true });
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
  const platforms = await debugPlatforms(mode, values.platform, io.env);
  const target = resolve(values.t ?? 'target');
  const name = sessionPart(values.name ?? values.to!.replace(/\//g, ''));
  const namespace = sessionPart(values.namespace ?? `veil-${randomBytes(4).toString('hex')}`);
  const service = values['service-name'] ?? 'service';
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
  const session = {
    name: `${namespace}/${name}`,
    version: '0.3',
    access_policy: { read: ['CREATOR'], update: ['CREATOR'] },
    services: [
      {
        name: service,
        image_name: `${service}_image`,
        mrenclaves: [built.measurement],
        command: built.command,
        environment: built.environment,
        pwd: built.pwd,
        fspf_path: built.fspf.path,
        fspf_key: built.fspf.key,
        fspf_tag: built.fspf.tag,
        ...(platforms.length ? { platforms } : {}),
      },
    ],
    images: [{ name: `${service}_image`, injection_files: yamlList(values.injectedfiles, io, 'injectedfiles') }],
    secrets: yamlList(values.secrets, io, 'secrets'),
    security: {
      attestation: { ...(mode === 'debug' ? { mode: 'none' } : {}), tolerate: TOLERATE, ignore_advisories: '*' },
    },
  };
  const text = JSON.stringify(session);
  parseSession(text, { file: 'generated session' });
  const dir = join(target, 'sconify', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'session.yaml'),
    `# upload with: veil session create -f session.yaml -e VEIL_FSPF_KEY=...\n${stringify({ ...session, services: [{ ...session.services[0], fspf_key: '$VEIL_FSPF_KEY' }] })}`,
  );
  if (!values['dry-run']) await upload(values.cas!, namespace, text, values['create-namespace'] === true, io);
  io.out(`${namespace}/${name}\n`);
  return 0;
}

async function upload(cas: string, namespace: string, text: string, createNamespace: boolean, io: Io): Promise<void> {
  const home = veilHome(io.env);
  const client = new CasClient(pinnedCas(home, cas), loadIdentity(home));
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
    const name = (JSON.parse(text) as { name: string }).name;
    const predecessor = await client.currentHash(name);
    await client.postSession(predecessor ? JSON.stringify({ ...JSON.parse(text), predecessor }) : text);
  } finally {
    await client.close();
  }
}

/** --secrets / --injectedfiles: a YAML file holding a list (SCONE passes YAML text). */
function yamlList(file: string | undefined, io: Io, what: string): unknown[] {
  if (!file) return [];
  const value = parse(io.readFile(file)) as unknown;
  if (!Array.isArray(value))
    throw usage(
      `--${what} ${file} is not a YAML list`,
      what === 'secrets'
        ? 'e.g. - {name: password, kind: ascii}'
        : 'e.g. - {path: /tls/key.pem, content: "$$SCONE::key$$"}',
    );
  return value;
}

function sessionPart(text: string): string {
  return text.replace(/[^A-Za-z0-9_\-.~]/g, '-').slice(0, 128);
}
