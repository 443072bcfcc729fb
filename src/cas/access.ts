import { identityFromPem, sameKeyHash, type ClientIdentity } from './identity-of.js';

/** The three permissions of a session's access_policy (SCONE session language §4.1). */
export type Permission = 'read' | 'update' | 'create_sessions';

export interface AccessPolicyLike {
  read?: string[] | undefined;
  update?: string[] | undefined;
  create_sessions?: string[] | undefined;
}

const KEY_HASH = /^[0-9a-fA-F]{64}$/;

/** The entries that apply: defaults are CREATOR for read and update; create_sessions follows update. */
export function entriesFor(policy: AccessPolicyLike | undefined, permission: Permission): string[] {
  if (permission === 'create_sessions') {
    return policy?.create_sessions ?? policy?.update ?? ['CREATOR'];
  }
  return policy?.[permission] ?? ['CREATOR'];
}

/** Default deny: a client is allowed only when an entry names it. */
export function isAllowed(
  policy: AccessPolicyLike | undefined,
  permission: Permission,
  client: ClientIdentity | undefined,
  creatorPem: string,
): boolean {
  const entries = entriesFor(policy, permission);
  if (entries.includes('NONE')) return false;
  if (entries.includes('ANY')) return true;
  if (!client) return false;
  return entries.some((entry) => entryMatches(entry, client, creatorPem));
}

function entryMatches(entry: string, client: ClientIdentity, creatorPem: string): boolean {
  if (entry === 'CREATOR') return sameKeyHash(identityFromPem(creatorPem).keyHash, client.keyHash);
  if (KEY_HASH.test(entry)) return sameKeyHash(entry, client.keyHash);
  if (entry.includes('-----BEGIN CERTIFICATE-----')) return pemMatches(entry, client);
  return false;
}

function pemMatches(pem: string, client: ClientIdentity): boolean {
  try {
    return sameKeyHash(identityFromPem(pem).keyHash, client.keyHash);
  } catch {
    return false; // an unparsable certificate names nobody
  }
}
