import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { uploadMessage, type UploadSignature } from '../contract/index.js';
import type { LeafEntry, SignerKeyType } from '../policy/index.js';
import { signerKeyHashOf } from '../policy/access-entries.js';
import { CasError } from './errors.js';

type Signer = Extract<LeafEntry, { kind: 'signer' }>;

/**
 * The key hashes of the signers, among those the deciding list names, whose signatures over this upload
 * verify. A signature by a key the list does not name carries no permission and is not verified; one by a named
 * signer that does not verify refuses the whole upload (a forged or stale signature is an error, not noise).
 * Verification runs in libuv's thread pool (crypto.verify with a callback), at most MAX_UPLOAD_SIGNATURES.
 */
export async function verifiedSigners(
  name: string,
  text: string,
  signatures: readonly UploadSignature[],
  named: ReadonlyMap<string, Signer>,
  creator?: string,
): Promise<string[]> {
  if (signatures.length === 0 || named.size === 0) return [];
  const message = uploadMessage(name, text, creator);
  const checks = signatures.map(async (sig, i) => {
    const keyHash = signerKeyHash(sig.signer, i);
    const signer = named.get(keyHash);
    if (!signer) return undefined;
    const valid = await verifyAsync(signer, message, Buffer.from(sig.signature, 'base64'));
    if (!valid) throw forged(name, keyHash, i, creator);
    return keyHash;
  });
  const keys = await Promise.all(checks);
  return [...new Set(keys.filter((k): k is string => k !== undefined))];
}

function signerKeyHash(pem: string, i: number): string {
  try {
    return signerKeyHashOf(createPublicKey(pem));
  } catch {
    throw new CasError('CAS_SIGNATURE_INVALID', `signatures[${i}].signer is not a public key PEM`, {
      hint: 'give the signer as its SubjectPublicKeyInfo PEM (openssl pkey -pubout), as the access policy names it',
    });
  }
}

function forged(name: string, keyHash: string, i: number, creator: string | undefined): CasError {
  const by = creator === undefined ? '' : ` by the client with key hash ${creator}`;
  return new CasError(
    'CAS_SIGNATURE_INVALID',
    `signatures[${i}] by signer ${keyHash} is not a valid signature over this upload of session '${name}'${by}`,
    {
      hint:
        'sign exactly the text uploaded (veil session sign generate-message-to-be-signed FILE gives the message); ' +
        'a signature over another text or another predecessor does not carry over, and one over a create ' +
        '(no predecessor) holds only for the uploader it names (veil session sign … --uploader CERT|KEYHASH)',
    },
  );
}

/** How each key type signs: Ed25519 over the message, ECDSA (DER, as openssl writes it) and RSA over its digest. */
const ALGORITHMS: Record<
  SignerKeyType,
  { digest: string | null; options: (key: KeyObject) => Parameters<typeof verify>[2] }
> = {
  ed25519: { digest: null, options: (key) => key },
  p256: { digest: 'sha256', options: (key) => ({ key, dsaEncoding: 'der' }) },
  p384: { digest: 'sha384', options: (key) => ({ key, dsaEncoding: 'der' }) },
  rsa: { digest: 'sha256', options: (key) => key },
};

function verifyAsync(signer: Signer, message: Buffer, signature: Buffer): Promise<boolean> {
  const { digest, options } = ALGORITHMS[signer.keyType];
  return new Promise((resolve) => {
    try {
      verify(digest, message, options(signer.key), signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false); // a signature of the wrong shape for the key is simply not valid
    }
  });
}
