import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { findPlaceholders, parseSession, PolicyError } from '../policy/index.js';
import { located, readYaml, validateShape, type Finding, type Source } from './source.js';
import {
  BUILD_KINDS,
  UNSUPPORTED,
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
  /** The directory `build.copy` paths are relative to: the manifest's own. */
  dir: string;
}

/** Parses a service manifest: its shape (all problems at once), then what it refers to. */
export function parseServiceManifest(text: string, file: string, dir: string): ParsedService {
  const source = readYaml(text, file);
  const manifest = validateShape(serviceManifestSchema, source, file);
  const unsupported = unsupportedFields(manifest);
  if (unsupported.length > 0) throw located('MANIFEST_UNSUPPORTED', unsupported, source, file);
  const findings = [
    ...buildFindings(manifest, dir),
    ...nameFindings(manifest),
    ...placeholderFindings(manifest),
    ...templateFindings(manifest),
    ...secretFindings(manifest),
  ];
  if (findings.length > 0) throw located('MANIFEST_REFERENCE', findings, source, file);
  return { manifest, source, file, dir };
}

function unsupportedFields(m: ServiceManifest): Finding[] {
  const found: Finding[] = UNSUPPORTED.filter(
    ({ path }) => (m.build as Record<string, unknown>)[path[1]!] !== undefined,
  ).map(({ path, why }) => ({ path, message: `is not supported: ${why}`, atKey: true }));
  if (!(BUILD_KINDS as readonly string[]).includes(m.build.kind)) {
    found.push({
      path: ['build', 'kind'],
      message: `kind '${m.build.kind}' is not supported; use ${BUILD_KINDS.map((k) => `'${k}'`).join(' or ')} ('native' runs an existing program such as redis-server)`,
    });
  }
  (m.secrets?.global ?? []).forEach((s, i) => {
    for (const field of ['tenant_id', 'client_id', 'application_secret'] as const) {
      if (s[field] !== undefined)
        found.push({
          path: ['secrets', 'global', i, field],
          message: 'is not supported: aad-token secrets are not implemented',
          atKey: true,
        });
    }
  });
  return found;
}

function buildFindings(m: ServiceManifest, dir: string): Finding[] {
  const copy = m.build.copy ?? [];
  const found: Finding[] = [];
  if (copy.length > 0 && !m.build.pwd)
    found.push({ path: ['build'], message: 'needs pwd: the directory in the image where the copied files go' });
  if (m.build.kind === 'native' && copy.length > 0)
    found.push({
      path: ['build', 'copy'],
      message: "kind 'native' runs an installed program: it copies no files (use kind 'python' for code of your own)",
    });
  copy.forEach((path, i) => {
    if (isAbsolute(path) || normalize(path).startsWith('..'))
      found.push({
        path: ['build', 'copy', i],
        message: `'${path}' must be relative and inside the manifest's directory`,
      });
    else if (!existsSync(join(dir, path)))
      found.push({ path: ['build', 'copy', i], message: `'${path}' does not exist (looked in ${dir})` });
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

/** A manifest secret as a session secret (without the aad-token fields, which are refused earlier). */
export function sessionSecret(s: ManifestSecret): Record<string, unknown> {
  const { tenant_id: _t, client_id: _c, application_secret: _a, ...rest } = s;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

export { ManifestError };
