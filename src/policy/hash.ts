import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { WrittenSession } from './schema.js';
import { redactSession } from './secret-fields.js';

/**
 * The session hash: SHA-256 over a label, the key hash of the session's creator (the identity that created
 * its first version, which every version keeps), a canonical JSON form (keys sorted, `creator` left out)
 * of the redacted session and, when it has any, the values of its config-fragments. Secret-bearing fields
 * count only as present, never by their values: whoever may learn a hash (readers, exporters pinning it)
 * could otherwise test guesses of a weak explicit value against it with the redacted policy at hand.
 * Config-fragments carry policy, not secrets, and fill what a pin must fix (attestation, access_policy,
 * security, platforms), so their values count: local ones as written, imported ones as the CAS fetched them
 * (`imported`, by local name; only the CAS knows them). Without `imported` it is the hash of the text alone
 * (what fragment imports are judged by, before their values are fetched). The creator is in it because
 * secret values are not: a `session_hash` pin names content *and* owner, so a stranger who creates the
 * pinned name first, with the same redacted content and values of his own, has another hash. Versions differ: each names its
 * predecessor's hash. `veil session calculate-hash` gives the CAS's answer offline, for the identity that
 * uploads, unless the session imports config-fragments.
 */
export function sessionHash(
  session: WrittenSession,
  creatorKeyHash: string,
  imported?: ReadonlyMap<string, unknown>,
): string {
  if (!/^[0-9a-f]{64}$/.test(creatorKeyHash)) throw new TypeError('creatorKeyHash must be 64 lower-case hex digits');
  const { creator: _creator, ...content } = redactSession(session);
  const hash = createHash('sha256')
    .update('veil-session-hash-v2\0')
    .update(creatorKeyHash)
    .update('\0')
    .update(canonicalJson(content));
  const fragments = fragmentValues(session, imported);
  // Only a session with fragments gets this part; `\0` cannot occur in canonical JSON, so the parts stay apart.
  if (fragments.length > 0) hash.update('\0config-fragments\0').update(canonicalJson(fragments));
  const platforms = platformSecretValues(session);
  if (platforms.length > 0) hash.update('\0platform-secrets\0').update(canonicalJson(platforms));
  return hash.digest('hex');
}

const PLACEHOLDER_NAME = /\$\$SCONE::([^:.|$]+)/g;

/**
 * The values of the ascii and binary secrets that `services[].platforms` entries name: platform IDs are no
 * secrets, and they decide which hosts a simulated service may run on, so a pin must fix them as it fixes
 * measurements. (The references check requires them written in the session.)
 */
export function platformSecretValues(session: WrittenSession): [string, unknown][] {
  const names = new Set<string>();
  for (const service of session.services ?? [])
    for (const entry of Array.isArray(service.platforms) ? service.platforms : [])
      if (typeof entry === 'string') for (const m of entry.matchAll(PLACEHOLDER_NAME)) names.add(m[1]!);
  return (session.secrets ?? [])
    .filter((s) => names.has(s.name) && (s.kind === 'ascii' || s.kind === 'binary'))
    .map((s) => [s.name, s.value ?? null]);
}

/**
 * Every config-fragment's value, in the order of `secrets`: `[name, value]`; imported ones only when
 * `imported` is given, and then each must be in it: a hash that left one out could not fix what it fills.
 */
function fragmentValues(session: WrittenSession, imported?: ReadonlyMap<string, unknown>): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const s of session.secrets ?? []) {
    if (s.kind !== 'config-fragment' || (s.import && !imported)) continue;
    const value = s.import ? imported?.get(s.name) : s.value;
    if (value === undefined) throw new TypeError(`the value of config-fragment '${s.name}' is needed for the hash`);
    out.push([s.name, value]);
  }
  return out;
}

/** Whether the session's hash covers values only the CAS knows (it imports config-fragments). */
export function importsFragments(session: WrittenSession): boolean {
  return (session.secrets ?? []).some((s) => s.kind === 'config-fragment' && s.import !== undefined);
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function serializeSession(session: WrittenSession): string {
  return stringify(session, { lineWidth: 0 });
}

/** The parent of `a/b/c` is `a/b`; a top-level session has none. */
export function sessionNamespace(name: string): string | undefined {
  const cut = name.lastIndexOf('/');
  return cut > 0 ? name.slice(0, cut) : undefined;
}
