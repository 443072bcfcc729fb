import { isIP } from 'node:net';
import { SecretsError } from './errors.js';

/** Certificate fields as a policy writes them: `san` entries, IP addresses, `valid_for` durations. */

/** `dns:` and `ip:` entries of `san` (session language 0.3.10) added to the older `dns` list, in order. */
export function subjectNames(owner: string, dns: string[] = [], san: string[] = []): { dns: string[]; ips: string[] } {
  const out = { dns: [...dns], ips: [] as string[] };
  for (const entry of san) {
    const colon = entry.indexOf(':');
    const type = entry.slice(0, colon).toLowerCase();
    const value = entry.slice(colon + 1);
    if (type === 'dns' && value) out.dns.push(value);
    else if (type === 'ip' && isIP(value)) out.ips.push(value);
    else throw badName(owner, entry);
  }
  return out;
}

function badName(owner: string, entry: string): SecretsError {
  return new SecretsError(
    'SECRET_INVALID_VALUE',
    `san entry '${entry}' of certificate '${owner}' is neither 'dns:<name>' nor 'ip:<address>'`,
    {
      hint: "write e.g. 'dns:api.example.com' or 'ip:10.0.0.1'",
    },
  );
}

/** A dNSName is an IA5String: ASCII only (internationalised names go in as their punycode A-labels). */
export function dnsBytes(name: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(name)) {
    throw new SecretsError('SECRET_INVALID_VALUE', `DNS name '${name}' is not printable ASCII`, {
      hint: 'write internationalised names as punycode (xn--…)',
    });
  }
  return Buffer.from(name, 'latin1');
}

/** The 4 or 16 network-order bytes of an iPAddress SAN. */
export function ipBytes(ip: string): Buffer {
  const version = ip.includes('%') ? 0 : isIP(ip);
  if (version === 4) return Buffer.from(ip.split('.').map(Number));
  if (version === 6) return ipv6Bytes(ip);
  throw new SecretsError('SECRET_INVALID_VALUE', `'${ip}' is not an IPv4 or IPv6 address`, {
    hint: 'give IP SANs as dotted quads or IPv6 text (no zone index)',
  });
}

function ipv6Bytes(ip: string): Buffer {
  // A trailing dotted quad (::ffff:10.0.0.1) is the last two groups written in decimal.
  const text = ip.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head, tail] = text.split('::') as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const zeros = tail === undefined ? [] : Array<string>(8 - groups(head).length - groups(tail).length).fill('0');
  const out = Buffer.alloc(16);
  for (const [i, g] of [...groups(head), ...zeros, ...groups(tail)].entries())
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  return out;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };
const UNIT_NAMES: Array<[RegExp, string]> = [
  [/^(s|secs?|seconds?)$/, 's'],
  [/^(m|mins?|minutes?)$/, 'm'],
  [/^(h|hrs?|hours?)$/, 'h'],
  [/^(d|days?)$/, 'd'],
  [/^(w|weeks?)$/, 'w'],
  [/^months?$/, 'M'],
  [/^(y|yrs?|years?)$/, 'y'],
];
export const ONE_YEAR_S = UNIT_SECONDS.y!;

/**
 * The shortest `valid_for`: a certificate is renewed at two thirds of its lifetime and `veil run` attests again
 * then, so anything shorter would keep a service re-attesting every few seconds (README "Certificates renewed
 * before they expire").
 */
export const MIN_VALID_FOR_S = 10;

/**
 * `valid_for` in seconds: one or more "<number> <unit>" groups ("1 year", "59d", "12 hours", "1y 6months").
 * A month is 30 days and a year 365; `m` is minutes and `M` months, as in the humantime notation. Absent means
 * one year (what a certificate gets when the policy says nothing).
 */
export function parseValidFor(text?: string): number {
  if (text === undefined) return ONE_YEAR_S;
  const total = parseDuration(text);
  if (total < MIN_VALID_FOR_S) {
    throw new SecretsError('SECRET_INVALID_VALUE', `valid_for '${text}' is shorter than ${MIN_VALID_FOR_S} seconds`, {
      hint: `give at least "${MIN_VALID_FOR_S}s" (certificates are renewed at two thirds of their lifetime)`,
    });
  }
  return total;
}

/** A duration in seconds, in valid_for's notation, without its minimum (`veil session read --within`). */
export function parseDuration(text: string): number {
  const groups = [...text.matchAll(/(\d+)\s*([A-Za-z]+)/g)];
  const rest = text.replace(/(\d+)\s*([A-Za-z]+)/g, '').replace(/[\s,]+/g, '');
  const total = groups.reduce((sum, m) => sum + Number(m[1]) * unitSeconds(m[2]!, text), 0);
  if (groups.length === 0 || rest !== '' || !(total > 0)) throw badDuration(text);
  return total;
}

function unitSeconds(unit: string, text: string): number {
  if (unit === 'M') return UNIT_SECONDS.M!;
  const match = UNIT_NAMES.find(([re]) => re.test(unit.toLowerCase()));
  if (!match) throw badDuration(text);
  return UNIT_SECONDS[match[1]]!;
}

function badDuration(text: string): SecretsError {
  return new SecretsError('SECRET_INVALID_VALUE', `valid_for '${text}' is not a duration`, {
    hint: 'write e.g. "1 year", "59d", "12 hours", "30 minutes", "2 weeks" or "20s"',
  });
}
