import { PolicyError, resolveSession, type Secret, type Session, type WrittenSession } from '../policy/index.js';
import type { StoredSecret } from '../secrets/index.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import { IMPORTED_FRAGMENT } from './parsed.js';
import { importSecret, type Importer } from './secret-view.js';
import type { SessionReader } from './session-reader.js';

/** A session the policy module refuses, as the CAS answers it (422, with the issues located). */
export function asPolicyError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof PolicyError) {
      throw new CasError('CAS_POLICY_INVALID', err.message, { hint: err.hint, cause: err, issues: err.issues });
    }
    throw err;
  }
}

/**
 * Imported config-fragments are fetched now, under the export rules of any import, and kept with the record:
 * the sections they fill decide who may read and update the session (its read index is written with it) and
 * what may attest, so they must be fixed when the session is. An exporter's change reaches the importer
 * when the importer is uploaded again. The exporter judges the importer by its access_policy as far as it is
 * known before the imports (policyBeforeImports).
 */
export function importFragments(
  ctx: { sessions: SessionReader },
  session: WrittenSession,
  importer: Importer,
  client: ClientIdentity,
): Record<string, StoredSecret> {
  const out: Record<string, StoredSecret> = {};
  for (const spec of session.secrets ?? []) {
    if (spec.kind !== 'config-fragment' || !spec.import) continue;
    const value = importSecret(ctx.sessions, importer, spec, client);
    if (value.kind !== 'config-fragment') throw notAFragment(session.name, spec, value.kind);
    out[`${IMPORTED_FRAGMENT}${spec.name}`] = value;
  }
  return out;
}

export function importedValues(written: WrittenSession, imported: (name: string) => unknown): Map<string, unknown> {
  const imports = (written.secrets ?? []).filter((s) => s.kind === 'config-fragment' && s.import);
  return new Map(imports.map((s) => [s.name, imported(s.name)]));
}

/**
 * The access_policy an export judges the importer by, before imported fragments are known: as written, with
 * local fragments filled in. One that an imported fragment fills could let anyone update the session, so it
 * is judged as `update: [ANY]`, which only a session_hash pin releases to.
 */
export function policyBeforeImports(written: WrittenSession): Session['access_policy'] {
  const imports = (written.secrets ?? []).filter((s) => s.kind === 'config-fragment' && s.import);
  const policy = JSON.stringify(written.access_policy ?? null);
  if (imports.some((s) => policy.includes(`$$SCONE::${s.name}$$`))) return { update: ['ANY'] };
  return asPolicyError(() => resolveSession(written, { unknownImports: 'omit' })).access_policy;
}

function notAFragment(session: string, spec: Secret, kind: string): CasError {
  const from = `secret '${spec.import!.secret}' of session '${spec.import!.session}'`;
  return new CasError(
    'CAS_POLICY_INVALID',
    `session '${session}' imports ${from} as a config-fragment, but it is a ${kind}`,
    {
      hint: `import it with its own kind (${kind}), or import a config-fragment`,
    },
  );
}
