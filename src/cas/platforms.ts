import { renderPlaceholders, type Session } from '../policy/index.js';
import { SecretsError, renderSecret } from '../secrets/index.js';
import { CasError } from './errors.js';
import { createSecretView } from './secret-view.js';
import type { SessionRecord } from './store/index.js';
import type { SessionReader } from './session-reader.js';

type Service = NonNullable<Session['services']>[number];
const PLATFORM_ID = /^[0-9a-fA-F]{64}$/;

/**
 * A service's platform IDs with every `$$SCONE::x$$` entry (reference §4.2) rendered from its secret: an ascii
 * secret holding the 64 hex digits, a 32-byte binary secret (its bytes, shown as hex), or any form that gives
 * 64 hex digits (`:hex`). Config-fragments were filled in when the session was parsed. An entry that gives
 * anything else refuses the attestation: a platform list that silently matched nothing would hide the mistake.
 */
export function platformsOf(store: SessionReader, record: SessionRecord, session: Session, service: Service): string[] {
  const entries = service.platforms ?? [];
  if (!entries.some((e) => e.includes('$$SCONE::'))) return entries;
  const lookup = createSecretView(store, record, session);
  return entries.map((entry, i) => {
    if (!entry.includes('$$SCONE::')) return entry;
    const where = `services[${service.name}].platforms[${i}] (${entry}) of session '${record.name}'`;
    let id: string;
    try {
      id = renderPlaceholders(entry, (p) => {
        const value = renderSecret(p.secret, p.suffix, lookup);
        return typeof value === 'string' ? value : value.length === 32 ? value.toString('hex') : '';
      });
    } catch (err) {
      if (!(err instanceof SecretsError)) throw err;
      throw new CasError('CAS_RENDER_FAILED', `${where}: ${err.message}`, { hint: err.hint, cause: err });
    }
    if (PLATFORM_ID.test(id)) return id.toLowerCase();
    throw new CasError('CAS_RENDER_FAILED', `${where} does not give a platform ID (64 hex digits)`, {
      hint: 'give the platform ID as an ascii secret of 64 hex digits or a 32-byte binary secret',
    });
  });
}
