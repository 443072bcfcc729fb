/**
 * Renewed certificates are state beside a session version (the session hash leaves values out, so a renewal
 * is not a new version): per session name, session hash and secret name, a sequence of generations. They are
 * kept as blobs, one per generation, so that dumps, loads and backups carry them unchanged; each generation's
 * blob is put only if absent, under a compare-and-set on the latest one (the store's putRenewal).
 */

/** One renewal: its place in the sequence (1 = the first renewal) and what the CAS stored for it. */
export interface Renewal {
  generation: number;
  value: Buffer;
}

const PREFIX = 'renewal:';
const WIDTH = 10;

/** A JSON array is never a prefix of another array's text once its closing bracket is cut at a comma. */
export function versionPrefix(name: string, hash: string): string {
  return `${PREFIX}${JSON.stringify([name, hash]).slice(0, -1)},`;
}

export function secretPrefix(name: string, hash: string, secret: string): string {
  return `${PREFIX}${JSON.stringify([name, hash, secret])}#`;
}

export function renewalKey(name: string, hash: string, secret: string, generation: number): string {
  return `${secretPrefix(name, hash, secret)}${String(generation).padStart(WIDTH, '0')}`;
}

/**
 * Keys under a prefix are those from the prefix up to, not including, the prefix with its last character
 * (',' or '#', both ASCII) one higher: a range both stores answer from their key index, bytewise.
 */
export function upperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

export function parseRenewalKey(key: string): { secret: string; generation: number } | undefined {
  const cut = key.lastIndexOf('#');
  if (!key.startsWith(PREFIX) || cut < 0) return undefined;
  try {
    const parts = JSON.parse(key.slice(PREFIX.length, cut)) as unknown;
    if (!Array.isArray(parts) || parts.length !== 3 || typeof parts[2] !== 'string') return undefined;
    const generation = Number(key.slice(cut + 1));
    return Number.isSafeInteger(generation) && generation > 0 ? { secret: parts[2], generation } : undefined;
  } catch {
    return undefined;
  }
}

/** The latest generation of each secret among blobs read under a version's prefix. */
export function latestOf(rows: Iterable<{ key: string; value: Buffer }>): Map<string, Renewal> {
  const out = new Map<string, Renewal>();
  for (const row of rows) {
    const parsed = parseRenewalKey(row.key);
    if (!parsed) continue;
    const seen = out.get(parsed.secret);
    if (!seen || seen.generation < parsed.generation) {
      out.set(parsed.secret, { generation: parsed.generation, value: row.value });
    }
  }
  return out;
}

/** Generations kept per secret: the latest and the one before (a replica that lost the race reads either). */
export const KEPT_GENERATIONS = 2;
