import { generateSessionKey, sessionRecipient, type SessionRecipient } from '../encryption/index.js';
import type { Store } from './store/index.js';

const SESSION_KEY = 'identity/session-encryption.key';

/**
 * The CAS's session-encryption key (X25519): made once, kept in the store beside the CA key (sealed with the
 * master key like every blob), so encrypted sessions made for this CAS open after a restart too.
 */
export async function loadSessionRecipient(store: Store, casFingerprint: string): Promise<SessionRecipient> {
  const pkcs8 = (await store.getBlob(SESSION_KEY)) ?? (await store.putBlobIfAbsent(SESSION_KEY, generateSessionKey()));
  return sessionRecipient(pkcs8, casFingerprint);
}
