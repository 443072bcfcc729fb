import { generateSessionKey, sessionRecipient, type SessionRecipient } from '../encryption/index.js';
import type { KeyCreated } from './identity.js';
import type { Store } from './store/index.js';

const SESSION_KEY = 'identity/session-encryption.key';

/**
 * The CAS's session-encryption key (X25519): made once, kept in the store beside the CA key (sealed with the
 * master key like every blob), so encrypted sessions made for this CAS open after a restart too.
 */
export async function loadSessionRecipient(
  store: Store,
  casFingerprint: string,
  created?: KeyCreated,
): Promise<SessionRecipient> {
  const stored = await store.getBlob(SESSION_KEY);
  if (stored) return sessionRecipient(stored, casFingerprint);
  const mine = generateSessionKey();
  const kept = await store.putBlobIfAbsent(SESSION_KEY, mine);
  const recipient = await sessionRecipient(kept, casFingerprint);
  // Its fingerprint is the public key's hash (GET /v1/identity shows it); the key itself never leaves the store.
  if (created && kept.equals(mine)) await created(recipient.keyHash);
  return recipient;
}
