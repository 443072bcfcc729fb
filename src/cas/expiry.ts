import type { CertificateDates } from '../contract/index.js';
import type { StoredSecret } from '../secrets/index.js';
import { sessionOf } from './parsed.js';
import { isRenewable } from './renewal.js';
import { certificateValue } from './values.js';
import { renewedRecord } from './renewed.js';
import type { CasContext } from './sessions.js';

/**
 * The certificates a session version defines (renewals applied) with their dates: what `veil session read
 * --expiring` warns about. Certificates are public material, so their dates tell a reader nothing secret.
 * Imported certificates are shown by the session that defines them.
 */
export async function certificateDates(ctx: CasContext, name: string, hash: string): Promise<CertificateDates[]> {
  const version = await ctx.store.version(name, hash);
  if (!version) return [];
  const record = await renewedRecord(ctx.store, version);
  return (sessionOf(record).secrets ?? []).flatMap((spec) => {
    const stored = record.secrets[spec.name] as StoredSecret | undefined;
    if (spec.import || (stored?.kind !== 'x509' && stored?.kind !== 'x509-ca')) return [];
    const dates = certificateValue(stored.kind, Buffer.from(stored.value, 'base64'), isRenewable(spec));
    if (dates.expires === null) return [];
    return [{ name: spec.name, kind: stored.kind, expires: dates.expires, renew: dates.renew }];
  });
}
