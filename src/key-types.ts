/**
 * The private-key types of the session language (`key_type`), which the CAS generates. Top level, beside lru.ts:
 * policy/ (the schema) and secrets/ (generation) both read this list and do not import each other.
 */
export const KEY_TYPES = ['P-256', 'P-384', 'Ed25519', 'RSA-2048', 'RSA-3072'] as const;

export type KeyType = (typeof KEY_TYPES)[number];
