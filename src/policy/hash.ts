import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { Session } from './schema.js';
import { redactSession } from './secret-fields.js';

/**
 * The session hash: SHA-256 over a canonical JSON form (keys sorted, `creator` left out, as the CAS adds it)
 * of the redacted session: secret-bearing fields count only as present, never by their values. Whoever may
 * learn a hash (readers, exporters pinning it) could otherwise test guesses of a weak explicit value against
 * it with the redacted policy at hand. Versions still differ: each names its predecessor's hash.
 * It depends on content only, so `veil session calculate-hash` gives the CAS's answer offline.
 */
export function sessionHash(session: Session): string {
  const { creator: _creator, ...content } = redactSession(session);
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
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

export function serializeSession(session: Session): string {
  return stringify(session, { lineWidth: 0 });
}

/** The parent of `a/b/c` is `a/b`; a top-level session has none. */
export function sessionNamespace(name: string): string | undefined {
  const cut = name.lastIndexOf('/');
  return cut > 0 ? name.slice(0, cut) : undefined;
}
