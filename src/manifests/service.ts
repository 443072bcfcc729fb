import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { unsupportedMessage } from '../policy/unsupported.js';
import { findPlaceholders, parseSession, PolicyError } from '../policy/index.js';
import { located, readYaml, validateShape, type Finding, type Source } from './source.js';
import {
  BUILD_KINDS,
  SIGNATURE_WHY,
  serviceManifestSchema,
  type ManifestSecret,
  type ServiceManifest,
} from './service-schema.js';
import { ManifestError } from './errors.js';
import { templateVariables } from './template.js';

export interface ParsedService {
  manifest: ServiceManifest;
  source: Source;
  file: string;
  /** The manifest's own directory. */
  dir: string;
  /** Where each `build.copy` path was found (absolute), in the order of `build.copy`. */
  copyFrom: string[];
}

/**
 * Parses a service manifest: its shape (all problems at once), then what it refers to. `build.copy` paths are
 * looked up as sconectl does, in the working directory (`cwd`, which sconectl mounts as /wd), then in `dir`.
 */
export function parseServiceManifest(
  text: string,
  file: string,
  dir: string,
  opts: { cwd?: string } = {},
): ParsedService {
  const source = readYaml(text, file);
  const manifest = validateShape(serviceManifestSchema, source, file);
  const unsupported = unsupportedFields(manifest);
  if (unsupported.length > 0) throw located('MANIFEST_UNSUPPORTED', unsupported, source, file);
  const roots = [...new Set([resolve(opts.cwd ?? process.cwd()), resolve(dir)])];
  const copyFrom = (manifest.build.copy ?? []).map(
    (p) => roots.map((r) => join(r, p)).find((f) => existsSync(f)) ?? '',
  );
  const findings = [
    ...buildFindings(manifest, roots, copyFrom),
    ...nameFindings(manifest),
    ...placeholderFindings(manifest),
    ...templateFindings(manifest),
    ...secretFindings(manifest),
  ];
  if (findings.length > 0) throw located('MANIFEST_REFERENCE', findings, source, file);
  return { manifest, source, file, dir, copyFrom };
}

/** What the shape accepts but Veil does not do, by value: a build kind, a signature asked for. */
function unsupportedFields(m: ServiceManifest): Finding[] {
  const found: Finding[] = [];
  if (!(BUILD_KINDS as readonly string[]).includes(m.build.kind)) {
    const why = `use ${BUILD_KINDS.map((k) => `'${k}'`).join(' or ')} ('native' runs an existing program such as redis-server)`;
    found.push({
      path: ['build', 'kind'],
      message: unsupportedMessage(`build.kind '${m.build.kind}'`, why),
      unsupported: true,
    });
  }
  const signature = m.build.signature;
  if (signature && signature.sign !== false) {
    const message = unsupportedMessage('signature', SIGNATURE_WHY);
    found.push({ path: ['build', 'signature'], message, atKey: true, unsupported: true });
  }
  return found;
}

function buildFindings(m: ServiceManifest, roots: string[], copyFrom: string[]): Finding[] {
  const copy = m.build.copy ?? [];
  const found: Finding[] = [];
  if (copy.length > 0 && !m.build.pwd)
    found.push({ path: ['build'], message: 'needs pwd: the directory in the image where the copied files go' });
  if (m.build.kind === 'native' && copy.length > 0)
    found.push({
      path: ['build', 'copy'],
      message: "kind 'native' runs an installed program: it copies no files (use kind 'python' for code of your own)",
    });
  const places =
    roots.length > 1 ? `the working directory ${roots[0]} and beside the manifest in ${roots[1]}` : roots[0];
  copy.forEach((path, i) => {
    if (isAbsolute(path) || normalize(path).split(/[\\/]/)[0] === '..')
      found.push({
        path: ['build', 'copy', i],
        message: `'${path}' must be relative, inside the working directory or the manifest's directory`,
      });
    else if (!copyFrom[i])
      found.push({ path: ['build', 'copy', i], message: `'${path}' does not exist (looked in ${places})` });
  });
  return found;
}

function nameFindings(m: ServiceManifest): Finding[] {
  const found: Finding[] = [];
  const seen = new Map<string, string>();
  const check = (name: string, path: Finding['path'], what: string) => {
    if (seen.has(name)) found.push({ path, message: `${what} '${name}' is already defined (${seen.get(name)})` });
    else seen.set(name, what);
  };
  for (const [i, v] of (m.environment.local ?? []).entries()) {
    check(v.name, ['environment', 'local', i, 'name'], 'variable');
  }
  for (const [i, v] of (m.environment.global ?? []).entries()) {
    check(v.name, ['environment', 'global', i, 'name'], 'variable');
  }
  seen.clear();
  for (const [i, s] of (m.secrets?.global ?? []).entries()) check(s.name, ['secrets', 'global', i, 'name'], 'secret');
  for (const [i, s] of (m.secrets?.import ?? []).entries()) check(s, ['secrets', 'import', i], 'secret');
  return found;
}

/** Where CAS placeholders may appear, each must name a secret this service defines or imports. */
function placeholderFindings(m: ServiceManifest): Finding[] {
  const known = new Set([...(m.secrets?.global ?? []).map((s) => s.name), ...(m.secrets?.import ?? [])]);
  return textSites(m).flatMap(({ path, text }) =>
    findPlaceholders(text)
      .filter((p) => !known.has(p.secret))
      .map((p) => ({
        path,
        message: `${p.raw} names secret '${p.secret}', which secrets.global does not define and secrets.import does not list`,
      })),
  );
}

function templateFindings(m: ServiceManifest): Finding[] {
  return textSites(m).flatMap(({ path, text }) => {
    const bad = [...text.matchAll(/\{\{(.*?)\}\}/gs)]
      .map((x) => x[0])
      .filter((expr) => templateVariables(expr).length === 0);
    return bad.map((expr) => ({
      path,
      message: `${expr} is not a mesh variable (write {{NAME}} or {{NAME | default(value="...")}})`,
    }));
  });
}

export function textSites(m: ServiceManifest): Array<{ path: Finding['path']; text: string }> {
  return [
    ...(m.environment.local ?? []).map((v, i) => ({ path: ['environment', 'local', i, 'value'], text: v.value })),
    ...(m.environment.global ?? []).flatMap((v, i) =>
      v.value === undefined ? [] : [{ path: ['environment', 'global', i, 'value'], text: v.value }],
    ),
    ...(m.injection_files ?? []).map((f, i) => ({ path: ['injection_files', i, 'content'], text: f.content })),
  ];
}

/**
 * The secrets are checked by the session language's own rules (kinds, issuers, keys), on a trial session
 * made of them, and its findings are mapped back to the manifest's fields.
 */
function secretFindings(m: ServiceManifest): Finding[] {
  const global = m.secrets?.global ?? [];
  if (global.length === 0) return [];
  const imports = (m.secrets?.import ?? []).map((name) => ({ name, import: { session: 'mesh/other', secret: name } }));
  try {
    parseSession(JSON.stringify({ name: 'trial', secrets: [...global.map(sessionSecret), ...imports] }), {
      file: 'manifest',
    });
    return [];
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    return err.issues.map((issue) => {
      const match = /^secrets\[(\d+)\](.*)$/.exec(issue.path);
      const index = match ? Number(match[1]) : -1;
      const rest = (match?.[2] ?? '').replace(/^\./, '').split('.').filter(Boolean);
      return index >= 0 && index < global.length
        ? { path: ['secrets', 'global', index, ...rest], message: issue.message }
        : { path: ['secrets'], message: issue.message };
    });
  }
}

/** A manifest secret as a session secret (the aad-token fields are refused by the shape). */
export function sessionSecret(s: ManifestSecret): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined));
}

export { ManifestError };
