import { generateKey, readPrivateKey, type PrivateKey } from 'openpgp';
import { SecretsError } from './errors.js';
import type { SecretSpec, StoredPgpKey } from './types.js';

/**
 * OpenPGP keys (`kind: pgp-key`, reference §4.3), made with `openpgp`. Curve25519 by default: an EdDSA primary
 * key with an ECDH subkey (v4, which GnuPG ≥ 2.1 reads) takes ≈ 10 ms; an RSA-3072 key ≈ 0.4 s, for no gain
 * in what the key can do. Both run asynchronously (RSA in WebCrypto, off the event loop; the longest pause of
 * the loop measured 6 ms for RSA, 2 ms for Curve25519), and every form a placeholder asks for is kept in
 * the stored secret, so rendering stays synchronous.
 */
export async function generatePgpKey(spec: SecretSpec): Promise<StoredPgpKey> {
  const { privateKey } = await generateKey({
    type: 'curve25519',
    userIDs: [{ name: spec.name }],
    format: 'object',
  });
  return pgpForms(privateKey);
}

/** An explicit `value`: an ASCII-armored private key without a passphrase (the CAS cannot unlock it). */
export async function pgpKeyFromValue(spec: SecretSpec): Promise<StoredPgpKey> {
  if (typeof spec.value !== 'string') throw invalid(spec, 'is not an ASCII-armored private key');
  let key: PrivateKey;
  try {
    key = await readPrivateKey({ armoredKey: spec.value });
  } catch {
    // The library's message may quote the input; say only what is wrong.
    throw invalid(spec, 'is not an ASCII-armored OpenPGP private key (-----BEGIN PGP PRIVATE KEY BLOCK-----)');
  }
  if (!key.isDecrypted()) throw invalid(spec, 'is protected by a passphrase, which the CAS cannot remove');
  try {
    await key.verifyPrimaryKey();
  } catch {
    throw invalid(spec, 'is not a valid OpenPGP key now (expired, revoked, or without a valid self-signature)');
  }
  return pgpForms(key);
}

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
