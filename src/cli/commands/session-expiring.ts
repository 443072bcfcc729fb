import type { CertificateDates } from '../../contract/index.js';
import { SecretsError, parseDuration } from '../../secrets/index.js';
import { CliError, usage } from '../errors.js';
import type { Io } from '../io.js';

/** `veil session read NAME --expiring [--within DURATION]`: the certificates close to expiry, and what renews them. */

/** The window `--within` defaults to. */
export const EXPIRING_WITHIN_DEFAULT = '30d';

/** `--within` in seconds; it belongs to `--expiring`. */
export function withinSeconds(expiring: boolean | undefined, text: string | undefined): number {
  if (!expiring) throw usage('--within needs --expiring', 'veil session read <name> --expiring --within 7d');
  try {
    return parseDuration(text ?? EXPIRING_WITHIN_DEFAULT);
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err;
    throw new CliError('CLI_USAGE', `--within '${text}' is not a duration`, {
      hint: 'write e.g. --within 30d, --within "12 hours" or --within 90s',
    });
  }
}

/** Prints the certificates expiring within `withinS`; exit status 1 when there is one (for a cron job). */
export function printExpiring(io: Io, name: string, certs: readonly CertificateDates[], withinS: number): number {
  const lines = expiringLines(certs, withinS, Date.now());
  if (lines.length === 0) {
    io.out(`no certificate of session '${name}' expires within ${withinS} s\n`);
    return 0;
  }
  io.out(`${lines.join('\n')}\n`);
  return 1;
}

/** One line per certificate expiring before `now + within` (soonest first); empty when none does. */
export function expiringLines(certs: readonly CertificateDates[], withinS: number, now: number): string[] {
  const limit = now + withinS * 1000;
  return certs
    .filter((c) => Date.parse(c.expires) <= limit)
    .sort((a, b) => Date.parse(a.expires) - Date.parse(b.expires))
    .map((c) => `${c.name} (${c.kind}): ${expiryText(c, now)}; ${renewalText(c, now)}`);
}

function expiryText(c: CertificateDates, now: number): string {
  const at = Date.parse(c.expires);
  return at <= now ? `expired at ${c.expires}` : `expires at ${c.expires} (in ${span(at - now)})`;
}

function renewalText(c: CertificateDates, now: number): string {
  if (c.renew === null) {
    return 'not renewed by the CAS (an explicit value): update the session with a new certificate';
  }
  const when = Date.parse(c.renew) <= now ? 'now due' : `from ${c.renew}`;
  return (
    `renewed by the CAS (${when}) when a service using it attests (veil run attests again on time) ` +
    'or it is read as a public value'
  );
}

function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}
