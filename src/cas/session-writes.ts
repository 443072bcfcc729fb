import { AuditError } from '../audit/errors.js';
import type { AuditEvent, EntryMaker } from '../audit/types.js';
import { auditUnavailable } from './audit-events.js';
import { CasError } from './errors.js';
import type { CasContext } from './sessions.js';
import type { AppendOutcome } from './store/index.js';

/**
 * The version and its entry are one store transaction (README "Audit log: events"): a CAS killed at any point
 * leaves both or neither, and an entry that cannot be made leaves no version (CAS_AUDIT_UNAVAILABLE).
 */
export async function appendRecorded(
  ctx: CasContext,
  event: AuditEvent,
  append: (make: EntryMaker) => Promise<AppendOutcome>,
): Promise<AppendOutcome> {
  const failed = (err: unknown) => (err instanceof CasError ? err : auditUnavailable(event.type, err));
  try {
    return await ctx.audit.withEntry(event, (make) =>
      append((head) => {
        try {
          return make(head);
        } catch (err) {
          // Thrown inside the store's transaction, which rolls back: the store passes a VeilError on unchanged.
          throw failed(err);
        }
      }),
    );
  } catch (err) {
    // The log refused before the write (closed, queue full, malformed event); store failures stay theirs.
    if (err instanceof AuditError) throw failed(err);
    throw err;
  }
}

export function signaturesMissing(what: string, missing: string): CasError {
  return new CasError('CAS_SIGNATURES_MISSING', `${what} needs signatures: ${missing}`, {
    hint:
      'have the signers sign the session text as uploaded (veil session sign generate-message-to-be-signed FILE, ' +
      'then veil session sign add-signature FILE --signer PUB.pem --signature SIG) and upload it with its ' +
      'signatures file (veil session update FILE)',
  });
}

export function updateForbidden(name: string): CasError {
  return new CasError('CAS_FORBIDDEN', `this client may not update session '${name}'`, {
    hint: "ask the session's owner to add your certificate or key hash to its access_policy.update",
  });
}

/**
 * CAS_BUSY, not CAS_STALE_PREDECESSOR: the upload's own predecessor is still right, the same upload may succeed
 * as it is. The session is named by the upload itself (its namespace or an import source), so naming it tells
 * nothing new.
 */
export function judgedByMoved(name: string): CasError {
  return new CasError('CAS_BUSY', `session '${name}' that this write reads changed meanwhile; upload again`, {
    hint: 'upload the same session again: it is judged anew against the current version of that session',
  });
}

export function staleWrite(name: string, current: string | null): CasError {
  return new CasError(
    'CAS_STALE_PREDECESSOR',
    `the predecessor does not match session '${name}': its current hash is ${current ?? '(none)'}`,
    {
      hint: 'read the session again, apply your change to that version and upload it with the current hash as predecessor',
    },
  );
}
