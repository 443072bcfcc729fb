import type { Store, SessionRecord } from './store/index.js';
import type { StoredSecret } from '../secrets/index.js';
import type { Secret, Session } from '../policy/index.js';
import { sessionOf } from './parsed.js';
import { CasError } from './errors.js';

/**
 * Secrets as one session sees them: its own, plus imports resolved at the moment of use (an exporter may be
 * uploaded after its importer). Names of other sessions' secrets are qualified as `session::secret`; `::`
 * cannot occur in a secret name, so the two spaces never collide.
 */
export type SecretLookup = (name: string) => StoredSecret | undefined;

const SEP = '::';

export function createSecretView(store: Store, record: SessionRecord, session: Session): SecretLookup {
  return (name) => {
    if (name.includes(SEP)) return qualifiedLookup(store, record.name, name);
    const spec = session.secrets?.find((s) => s.name === name);
    if (spec?.import) return importSecret(store, record.name, spec);
    return record.secrets[name] as StoredSecret | undefined;
  };
}

/** Resolves `import: {session, secret}` or fails naming both sessions, as a user needs to fix either side. */
export function importSecret(store: Store, importer: string, spec: Secret): StoredSecret {
  const from = spec.import!;
  const exporterName = resolveRelative(importer, from.session);
  const exporter = store.current(exporterName);
  if (!exporter) {
    throw new CasError('CAS_IMPORT_DENIED', `session '${importer}' imports secret '${from.secret}' from session '${exporterName}', which does not exist`, {
      hint: `create session '${exporterName}' (with the secret exported to '${importer}') first`,
    });
  }
  const exporterSpec = specOf(exporter, from.secret);
  if (!exporterSpec || !isExportedTo(exporterSpec, exporterName, importer)) {
    throw notExported(importer, exporterName, from.secret);
  }
  const value = exporter.secrets[from.secret] as StoredSecret | undefined;
  if (!value) throw notExported(importer, exporterName, from.secret);
  return qualify(value, exporterName);
}

function notExported(importer: string, exporter: string, secret: string): CasError {
  return new CasError('CAS_IMPORT_DENIED', `session '${importer}' imports secret '${secret}' from session '${exporter}', but '${exporter}' does not export it to '${importer}'`, {
    hint: `add 'export: [{session: ${importer}}]' to secret '${secret}' in session '${exporter}'`,
  });
}

/** Certificates name their key and issuer inside the exporter; keep those references pointing there. */
function qualify(value: StoredSecret, session: string): StoredSecret {
  if (value.kind !== 'x509' && value.kind !== 'x509-ca') return value;
  const out = { ...value };
  if (value.privateKey) out.privateKey = `${session}${SEP}${value.privateKey}`;
  if (value.issuer) out.issuer = `${session}${SEP}${value.issuer}`;
  return out;
}

/**
 * A qualified name reaches into another session: certificates (public material, needed for chains) always,
 * private keys only when the exporter exports them to the importer — importing a certificate gives its key
 * only if that key was exported too.
 */
export function qualifiedLookup(store: Store, importer: string, qualified: string): StoredSecret | undefined {
  const [sessionName, secretName] = qualified.split(SEP) as [string, string];
  const record = store.current(sessionName);
  const value = record?.secrets[secretName] as StoredSecret | undefined;
  if (!record || !value) return undefined;
  if (value.kind === 'x509' || value.kind === 'x509-ca') return qualify(value, sessionName);
  const spec = specOf(record, secretName);
  if (!spec || !isExportedTo(spec, sessionName, importer)) throw notExported(importer, sessionName, secretName);
  return value;
}

function specOf(record: SessionRecord, secret: string): Secret | undefined {
  return sessionOf(record).secrets?.find((s) => s.name === secret);
}

export function isExportedTo(spec: Secret, exporter: string, importer: string): boolean {
  return (spec.export ?? []).some((target) => {
    if ('namespace' in target && target.namespace !== undefined) {
      return importer.startsWith(`${resolveRelative(exporter, target.namespace)}/`);
    }
    return 'session' in target && resolveRelative(exporter, target.session) === importer;
  });
}

/** `./child` and `../sibling` are relative to the exporting session's path (session language ≥ 5.8). */
export function resolveRelative(base: string, name: string): string {
  if (!name.startsWith('./') && !name.startsWith('../')) return name;
  const parts = base.split('/');
  for (const part of name.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.') parts.push(part);
  }
  return parts.join('/');
}
