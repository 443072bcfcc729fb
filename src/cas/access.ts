import { X509Certificate } from 'node:crypto';
import { accessEntries, type AccessEntry, type Permission } from '../policy/index.js';
import { sha256Hex } from '../policy/access-entries.js';
import { spkiOfPublicKey, type StoredSecret } from '../secrets/index.js';
import { admits, type Owner } from './governance.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { sessionOf } from './parsed.js';
import type { SessionRecord } from './store/index.js';

export type { Permission };

export interface AccessPolicyLike {
  read?: readonly unknown[] | undefined;
  update?: readonly unknown[] | undefined;
  create_sessions?: readonly unknown[] | undefined;
}

/** One array, so its typed form is parsed once (accessEntries caches by list). */
const DEFAULT: readonly unknown[] = Object.freeze(['CREATOR']);

/** The entries that apply, typed: defaults are CREATOR for read and update; create_sessions follows update. */
export function entriesFor(policy: AccessPolicyLike | undefined, permission: Permission): AccessEntry[] {
  const list =
    permission === 'create_sessions'
      ? (policy?.create_sessions ?? policy?.update ?? DEFAULT)
      : (policy?.[permission] ?? DEFAULT);
  return accessEntries(list, permission === 'create_sessions' && !policy?.create_sessions ? 'update' : permission);
}

/**
 * Default deny: a client is allowed only when an entry names it. `signers` are the key hashes of verified
 * signatures over the request's upload; `secrets`, the deciding session's, resolve `$$SCONE::name$$` entries.
 */
export function isAllowed(
  policy: AccessPolicyLike | undefined,
  permission: Permission,
  client: ClientIdentity | undefined,
  creatorPem: string,
  extra: { signers?: readonly string[]; secrets?: Record<string, unknown> } = {},
): boolean {
  const owner = ownerOf(creatorPem, extra.secrets ?? {});
  return admits(entriesFor(policy, permission), { client, signers: extra.signers ?? [] }, owner);
}

/** isAllowed by a stored session's own policy, creator and certificates. */
export function isAllowedOn(
  record: SessionRecord,
  permission: Permission,
  client: ClientIdentity | undefined,
  signers: readonly string[] = [],
): boolean {
  return isAllowed(sessionOf(record).access_policy, permission, client, record.creator, {
    signers,
    secrets: record.secrets,
  });
}

export function ownerOf(creatorPem: string, secrets: Record<string, unknown>): Owner {
  let creator: string | undefined;
  return {
    creatorKeyHash: () => {
      creator ??= identityFromPem(creatorPem).keyHash;
      return creator;
    },
    certificateKeyHash: (name) => certificateKeyHash(secrets, name),
  };
}

/** The key hash of a stored x509/x509-ca secret's certificate; nothing for another kind or an unreadable one. */
export function certificateKeyHash(secrets: Record<string, unknown>, name: string): string | undefined {
  if (!Object.hasOwn(secrets, name)) return undefined;
  const secret = secrets[name] as StoredSecret;
  if (secret.kind !== 'x509' && secret.kind !== 'x509-ca') return undefined;
  try {
    const cert = new X509Certificate(Buffer.from(secret.value, 'base64'));
    return sha256Hex(spkiOfPublicKey(cert.publicKey));
  } catch {
    return undefined;
  }
}
