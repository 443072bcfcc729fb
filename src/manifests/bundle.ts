import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { encryptTree, plainTreeMac } from '../fsshield/index.js';
import { RuntimeError, openProgram } from '../runtime/index.js';
import { PolicyError, splitCommand } from '../policy/index.js';
import { ManifestError } from './errors.js';
import type { ParsedService } from './service.js';
import type { ManifestSecret } from './service-schema.js';

/** PATH for programs of a mesh, at apply time (to measure) and at run time (to start): the system's, not a user's shims. */
export const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const BUNDLE_FORMAT = 'veil-bundle-1';

/**
 * What `veil apply -f service.yaml` builds under `<target>/services/<name>/`: `bundle.json` (below) and, when
 * the manifest copies files, `app/`, the files encrypted with the shield. Nothing in it is secret: the
 * shield's key is kept in the key directory (0600), never in the target directory.
 */
export interface Bundle {
  format: typeof BUNDLE_FORMAT;
  name: string;
  image: string;
  kind: string;
  /** The working directory the manifest names (the image's); locally the shielded tree stands in for it. */
  pwd: string;
  command: string[];
  /** The program as found on SERVICE_PATH when measured (the host starts it with `veil run -- <argv0>`). */
  program: string;
  measurement: string;
  /** `mac`: HMAC of the plaintext under the shield key, to keep the encrypted tree when nothing changed. */
  shield?: { dir: string; tag: string; mac?: string };
  environment: { local: Array<{ name: string; value: string }>; global: Array<{ name: string; value?: string }> };
  /**
   * The secrets without their explicit values: those are kept beside the shield keys (0600, `values`
   * names the file) and go only into the policy uploaded to the CAS.
   */
  secrets: { global: ManifestSecret[]; import: string[]; values?: string };
  injection_files: Array<{ path: string; content: string }>;
  /** The OCI image built from the bundle, when one was: its measurement is of the program inside it. */
  built?: { reference: string; digest: string; program: string; measurement: string };
}

/** Records the image built from a bundle (see images/), so a mesh can name its digest and measurement. */
export function recordImage(
  dir: string,
  built: { reference: string; digest: string; program: string; measurement: string },
): void {
  const file = join(dir, 'bundle.json');
  const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
  const { reference, digest, program, measurement } = built;
  writeFileSync(
    file,
    `${JSON.stringify({ ...bundle, built: { reference, digest, program, measurement } }, null, 2)}\n`,
  );
}

export interface ApplyServiceOptions {
  target: string;
  /** Where shield keys are kept (0600 files named by tag), outside the target directory. */
  keysDir: string;
}

/** Builds the bundle next to the old one and swaps it in, so a failure leaves the previous bundle intact. */
export function buildBundle(parsed: ParsedService, opts: ApplyServiceOptions): { bundle: Bundle; dir: string } {
  const { manifest: m } = parsed;
  const command = commandOf(parsed);
  const services = join(opts.target, 'services');
  mkdirSync(services, { recursive: true });
  const staging = mkdtempSync(join(services, `.${m.build.name}-`));
  try {
    const previous = readBundle(join(services, m.build.name));
    const shield =
      (m.build.copy ?? []).length > 0 ? shieldFiles(parsed, join(staging, 'app'), opts.keysDir, previous) : undefined;
    const opened = measure(parsed, command[0]!);
    const bundle: Bundle = {
      format: BUNDLE_FORMAT,
      name: m.build.name,
      image: m.build.to,
      kind: m.build.kind,
      pwd: m.build.pwd ?? '/',
      command,
      program: opened.path,
      measurement: opened.measurement,
      ...(shield ? { shield } : {}),
      environment: { local: m.environment.local ?? [], global: m.environment.global ?? [] },
      secrets: secretsOf(parsed, opts.keysDir, previous?.bundle),
      injection_files: m.injection_files ?? [],
    };
    writeFileSync(join(staging, 'bundle.json'), `${JSON.stringify(bundle, null, 2)}\n`);
    const dir = join(services, m.build.name);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return { bundle, dir };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/** The bundle's secrets: explicit values moved to `<keysDir>/values-<ref>.json` (0600), the ref kept across applies. */
function secretsOf(parsed: ParsedService, keysDir: string, previous: Bundle | undefined): Bundle['secrets'] {
  const global = parsed.manifest.secrets?.global ?? [];
  const imports = parsed.manifest.secrets?.import ?? [];
  const values = Object.fromEntries(global.flatMap((s) => (s.value === undefined ? [] : [[s.name, s.value]])));
  const stripped = global.map(({ value: _value, ...rest }) => rest);
  if (Object.keys(values).length === 0) return { global: stripped, import: imports };
  const ref = previous?.secrets.values ?? randomBytes(16).toString('hex');
  writePrivate(keysDir, `values-${ref}.json`, `${JSON.stringify(values)}\n`);
  return { global: stripped, import: imports, values: ref };
}

/** The explicit secret values of a bundle (by secret name), from the key directory. */
export function loadSecretValues(keysDir: string, bundle: Bundle, service: string): Map<string, string> {
  const ref = bundle.secrets.values;
  if (ref === undefined) return new Map();
  const path = join(keysDir, `values-${ref}.json`);
  if (!/^[0-9a-f]{32}$/.test(ref) || !existsSync(path)) {
    const message = `the explicit secret values of service '${service}' (${ref}) are not in ${keysDir}`;
    throw new ManifestError('MANIFEST_BUNDLE', [{ path: '', message }], service, {
      hint: 'apply the service manifest again on this machine (veil apply -f service.yaml), with the same VEIL_HOME',
    });
  }
  return new Map(Object.entries(JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>));
}

function measure(parsed: ParsedService, program: string): { path: string; measurement: string } {
  try {
    const opened = openProgram(program, SERVICE_PATH);
    opened.close();
    return opened;
  } catch (err) {
    if (!(err instanceof RuntimeError)) throw err;
    throw new ManifestError(
      'MANIFEST_REFERENCE',
      [
        {
          path: 'build.command',
          message: `${err.message} (PATH ${SERVICE_PATH})`,
          ...lineOf(parsed, ['build', 'command']),
        },
      ],
      parsed.file,
      {
        hint: `install the program (e.g. apt-get install ${program === 'python3' ? 'python3' : program}), or name it by its path`,
        cause: err,
      },
    );
  }
}

function commandOf(parsed: ParsedService): string[] {
  const refuse = (message: string, cause?: unknown) => {
    const issue = { path: 'build.command', message, ...lineOf(parsed, ['build', 'command']) };
    return new ManifestError('MANIFEST_SHAPE', [issue], parsed.file, { cause });
  };
  try {
    const argv = splitCommand(parsed.manifest.build.command, 'build.command');
    if (argv.length === 0) throw refuse('is empty');
    return argv;
  } catch (err) {
    if (err instanceof PolicyError) throw refuse(err.issues[0]!.message, err);
    throw err;
  }
}

function lineOf(parsed: ParsedService, path: string[]): { line?: number; column?: number } {
  const pos = parsed.source.locate(path);
  return pos ? { line: pos.line, column: pos.column } : {};
}

/**
 * The copied files, encrypted: plaintext only ever sits in a private temporary directory, removed at once.
 * When they have not changed since the last apply (same MAC under the previous key), the previous encrypted
 * tree is kept as it is, so the image layer made from it keeps its digest: same inputs, same image.
 */
function shieldFiles(
  parsed: ParsedService,
  out: string,
  keysDir: string,
  previous: { bundle: Bundle; dir: string } | undefined,
): NonNullable<Bundle['shield']> {
  const plain = mkdtempSync(join(tmpdir(), 'veil-apply-'));
  try {
    for (const [i, path] of (parsed.manifest.build.copy ?? []).entries())
      cpSync(parsed.copyFrom[i]!, join(plain, path), { recursive: true });
    const old = previous?.bundle.shield;
    const oldKey = old?.mac ? readShieldKey(keysDir, old.tag) : undefined;
    if (old && oldKey && plainTreeMac(plain, oldKey) === old.mac) {
      cpSync(join(previous.dir, old.dir), out, { recursive: true });
      return old;
    }
    const { key, tag } = encryptTree(plain, out);
    saveShieldKey(keysDir, tag, key);
    return { dir: 'app', tag, mac: plainTreeMac(plain, key) };
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
}

function readBundle(dir: string): { bundle: Bundle; dir: string } | undefined {
  try {
    const bundle = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as Bundle;
    return bundle.format === BUNDLE_FORMAT ? { bundle, dir } : undefined;
  } catch {
    return undefined;
  }
}

function readShieldKey(keysDir: string, tag: string): string | undefined {
  const path = join(keysDir, `${tag}.key`);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}

export function saveShieldKey(keysDir: string, tag: string, key: string): void {
  writePrivate(keysDir, `${tag}.key`, `${key}\n`);
}

function writePrivate(keysDir: string, file: string, content: string): void {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const path = join(keysDir, file);
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  chmodSync(`${path}.tmp`, 0o600);
  renameSync(`${path}.tmp`, path);
}

export function loadShieldKey(keysDir: string, tag: string, service: string): string {
  const path = join(keysDir, `${tag}.key`);
  if (!existsSync(path)) {
    throw new ManifestError(
      'MANIFEST_BUNDLE',
      [{ path: '', message: `the key of service '${service}''s shielded files (tag ${tag}) is not in ${keysDir}` }],
      service,
      {
        hint: 'apply the service manifest again on this machine (veil apply -f service.yaml), with the same VEIL_HOME',
      },
    );
  }
  return readFileSync(path, 'utf8').trim();
}

/** Every bundle under the target directory, by the image name its manifest builds (`build.to`). */
export function bundlesByImage(target: string): Map<string, { bundle: Bundle; dir: string }> {
  const services = join(target, 'services');
  const found = new Map<string, { bundle: Bundle; dir: string }>();
  if (!existsSync(services)) return found;
  for (const name of readdirSync(services)) {
    const file = join(services, name, 'bundle.json');
    if (name.startsWith('.') || !existsSync(file)) continue;
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
    if (bundle.format === BUNDLE_FORMAT) found.set(bundle.image, { bundle, dir: resolve(dirname(file)) });
  }
  return found;
}
