import {
  chmodSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
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
/** In the key directory: the secret shield keys are derived from (see shieldKeyOf). */
const BUILD_SECRET = 'build-secret';

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
  /** The encrypted tree (`dir`) and its tag; unchanged files give the same tree (see shieldFiles). */
  shield?: { dir: string; tag: string };
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
    const shield =
      (m.build.copy ?? []).length > 0
        ? shieldFiles(parsed, join(staging, 'app'), opts.keysDir, m.build.name)
        : undefined;
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
      secrets: secretsOf(parsed, opts.keysDir),
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
function secretsOf(parsed: ParsedService, keysDir: string): Bundle['secrets'] {
  const global = parsed.manifest.secrets?.global ?? [];
  const imports = parsed.manifest.secrets?.import ?? [];
  const values = Object.fromEntries(global.flatMap((s) => (s.value === undefined ? [] : [[s.name, s.value]])));
  const stripped = global.map(({ value: _value, ...rest }) => rest);
  if (Object.keys(values).length === 0) return { global: stripped, import: imports };
  // Named by their HMAC under the build secret: the same values, the same file (and bundle), whatever the target.
  const ref = createHmac('sha256', buildSecret(keysDir))
    .update(`veil values\0${parsed.manifest.build.name}\0${JSON.stringify(values)}`)
    .digest('hex')
    .slice(0, 32);
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
 * The key is derived from the plaintext under this machine's build secret (`shieldKeyOf`) and the encryption
 * is deterministic, so unchanged files give the same encrypted tree — and the image layer made from it the
 * same digest — even in a fresh target directory, while changed files get an unrelated key.
 */
function shieldFiles(
  parsed: ParsedService,
  out: string,
  keysDir: string,
  service: string,
): NonNullable<Bundle['shield']> {
  const plain = mkdtempSync(join(tmpdir(), 'veil-apply-'));
  try {
    for (const [i, path] of (parsed.manifest.build.copy ?? []).entries())
      cpSync(parsed.copyFrom[i]!, join(plain, path), { recursive: true });
    normalizeModes(plain);
    const { key, tag } = encryptTree(plain, out, shieldKeyOf(plain, keysDir, service), { deterministic: true });
    saveShieldKey(keysDir, tag, key);
    return { dir: 'app', tag };
  } finally {
    rmSync(plain, { recursive: true, force: true });
  }
}

/**
 * As git keeps them: 0755 where any execute bit is set, else 0644 — so the umask and checkout of the source
 * tree change neither the decrypted files nor the encrypted tree.
 */
function normalizeModes(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      chmodSync(path, 0o755);
      normalizeModes(path);
    } else if (e.isFile()) chmodSync(path, statSync(path).mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * The shield key of a plaintext tree: HKDF of its HMAC under the build secret of this VEIL_HOME. Whoever lacks
 * the secret learns nothing of the key from the tree; keep `shield-keys/` (a CI secret) to rebuild the same
 * image elsewhere.
 */
function shieldKeyOf(plain: string, keysDir: string, service: string): Buffer {
  const mac = Buffer.from(plainTreeMac(plain, buildSecret(keysDir)), 'hex');
  return Buffer.from(hkdfSync('sha256', mac, Buffer.from(service), 'veil-fspf volume key of a tree', 32));
}

/** 32 random bytes (hex), made on first use; never named like a `<tag>.key`, so no bundle can point at it. */
function buildSecret(keysDir: string): string {
  const path = join(keysDir, BUILD_SECRET);
  if (!existsSync(path)) {
    mkdirSync(keysDir, { recursive: true, mode: 0o700 });
    // Written aside and linked into place: a concurrent apply sees no file or the whole one, and one secret wins.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const secret = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(secret))
    throw new ManifestError('MANIFEST_BUNDLE', [{ path: '', message: `${path} is not 64 hex digits` }], path, {
      hint: 'restore it from your backup of the key directory, or delete it (images get new shield keys)',
    });
  return secret;
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
