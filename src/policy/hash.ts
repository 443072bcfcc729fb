import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { WrittenSession } from './schema.js';
import { redactSession } from './secret-fields.js';

/**
 * The session hash: SHA-256 over a label, the key hash of the session's creator (the identity that created
 * its first version, which every version keeps) and a canonical JSON form (keys sorted, `creator` left out)
 * of the redacted session: secret-bearing fields count only as present, never by their values. Whoever may
 * learn a hash (readers, exporters pinning it) could otherwise test guesses of a weak explicit value against
 * it with the redacted policy at hand. The creator is in it because the values are not: a `session_hash` pin
 * names content *and* owner, so a stranger who creates the pinned name first, with the same redacted content
 * and values of his own, has another hash. Versions differ: each names its predecessor's hash.
 * `veil session calculate-hash` gives the CAS's answer offline, for the identity that uploads.
 */
export function sessionHash(session: WrittenSession, creatorKeyHash: string): string {
  if (!/^[0-9a-f]{64}$/.test(creatorKeyHash)) throw new TypeError('creatorKeyHash must be 64 lower-case hex digits');
  const { creator: _creator, ...content } = redactSession(session);
  return createHash('sha256')
    .update('veil-session-hash-v2\0')
    .update(creatorKeyHash)
    .update('\0')
    .update(canonicalJson(content))
    .digest('hex');
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
