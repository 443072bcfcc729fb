import type { PrivateKey } from 'openpgp';
import { SecretsError } from './errors.js';
import type { SecretSpec, StoredPgpKey } from './types.js';

/**
 * OpenPGP keys (`kind: pgp-key`, reference §4.3), made with `openpgp`. Curve25519 in its widely read form (a
 * v4 EdDSA primary key with an ECDH subkey, `curve25519Legacy`: GnuPG ≥ 2.1 reads it; the RFC 9580 Ed25519
 * algorithm is refused by GnuPG 2.2) takes 10–30 ms; an RSA-3072 key took 3.5–4.3 s on the loaded 2-core
 * machine, for no gain in what the key can do. Curve25519 runs on the calling thread, so generation makes pgp
 * keys one at a time, handing the event loop back between secrets, and a session holds at most
 * SESSION_LIMITS.pgpKeys of them. Every form a placeholder asks for is kept in the stored secret, so rendering
 * stays synchronous.
 */
export async function generatePgpKey(spec: SecretSpec): Promise<StoredPgpKey> {
  const { generateKey } = await openpgp();
  const { privateKey } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: spec.name }],
    format: 'object',
  });
  return pgpForms(privateKey);
}

/** An explicit `value`: an ASCII-armored private key without a passphrase (the CAS cannot unlock it). */
export async function pgpKeyFromValue(spec: SecretSpec): Promise<StoredPgpKey> {
  if (typeof spec.value !== 'string') throw invalid(spec, 'is not an ASCII-armored private key');
  const { readPrivateKey } = await openpgp();
  let key: PrivateKey;
  try {
    key = await readPrivateKey({ armoredKey: spec.value });
  } catch {
    // The library's message may quote the input; say only what is wrong.
    throw invalid(spec, 'is not an ASCII-armored OpenPGP private key (a PGP PRIVATE KEY BLOCK)');
  }
  if (!key.isDecrypted()) throw invalid(spec, 'is protected by a passphrase, which the CAS cannot remove');
  try {
    await key.verifyPrimaryKey();
  } catch {
    throw invalid(spec, 'is not a valid OpenPGP key now (expired, revoked, or without a valid self-signature)');
  }
  return pgpForms(key);
}

/**
 * Loaded when a pgp key is made or read, never at import: `veil run` imports this module's neighbours, and the
 * runtime layer of an image carries Veil's code without node_modules.
 */
const openpgp = () => import('openpgp');

function pgpForms(key: PrivateKey): StoredPgpKey {
  const publicKey = key.toPublic();
  return {
    kind: 'pgp-key',
    value: key.armor(),
    binary: Buffer.from(key.write()).toString('base64'),
    publicKey: publicKey.armor(),
    publicBinary: Buffer.from(publicKey.write()).toString('base64'),
  };
}

/** `:privatekey:…` and `:publickey:…` with `asciiarmored`, `binary` or `base64`. */
export function pgpForm(key: StoredPgpKey, suffix: string): string | Buffer | undefined {
  const match = /^:(privatekey|publickey):(asciiarmored|binary|base64)$/.exec(suffix);
  if (!match) return undefined;
  const isPrivate = match[1] === 'privatekey';
  if (match[2] === 'asciiarmored') return isPrivate ? key.value : key.publicKey;
  const base64 = isPrivate ? key.binary : key.publicBinary;
  return match[2] === 'base64' ? base64 : Buffer.from(base64, 'base64');
}

function invalid(spec: SecretSpec, what: string): SecretsError {
  return new SecretsError('SECRET_INVALID_VALUE', `the value of pgp-key secret '${spec.name}' ${what}`, {
    hint: 'give an unprotected ASCII-armored private key (gpg --export-secret-keys --armor), or no value',
  });
}
