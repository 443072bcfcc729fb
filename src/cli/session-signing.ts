import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import {
  MAX_UPLOAD_SIGNATURES,
  type SessionEnvelope,
  type UploadSignature,
  uploadMessage,
  uploadSignatureSchema,
} from '../contract/index.js';
import { signerKeyHashOf, signerKeyType } from '../policy/access-entries.js';
import type { SignerKeyType } from '../policy/index.js';
import { CliError } from './errors.js';

/**
 * The client side of governance: signing an upload, checking a signature, and the signatures file kept beside
 * a session (`FILE.signatures`). The message is the CAS's (contract `uploadMessage`), so what is checked here is
 * what the CAS will check.
 */

/** Digest per key type, as `openssl dgst -sha256|-sha384 -sign` (ECDSA DER, RSA PKCS#1 v1.5) and pure Ed25519. */
const DIGEST: Record<SignerKeyType, string | null> = { ed25519: null, p256: 'sha256', p384: 'sha384', rsa: 'sha256' };

function keyTypeOf(key: KeyObject, what: string): SignerKeyType {
  const type = signerKeyType(key);
  if (typeof type === 'string') return type;
  throw new CliError('CLI_SIGNATURE', `${what}: ${type.problem}`, {
    hint: 'sign with an Ed25519, ECDSA P-256/P-384 or RSA (2048–8192 bits) key',
  });
}

/** The signer's public key as the access policy names it: SubjectPublicKeyInfo PEM. */
export function signerPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}

/** Key hash of a signer (hex SHA-256 of its DER SPKI, EC points uncompressed), as messages name signers. */
export function signerKeyHash(pem: string): string {
  return signerKeyHashOf(createPublicKey(pem));
}

/**
 * One signature over the upload of `text` as session `name`, by a private key (PEM). `creator`: for a create (a
 * text without predecessor), the key hash of the client that will upload it (contract `uploadMessage`).
 */
export function signatureOver(text: string, name: string, keyPem: string, creator?: string): UploadSignature {
  const key = createPrivateKey(keyPem);
  const digest = DIGEST[keyTypeOf(key, 'the signing key')];
  const signature = sign(digest, uploadMessage(name, text, creator), { key, dsaEncoding: 'der' });
  return { signer: signerPem(key), signature: signature.toString('base64') };
}

/** The envelope of an upload signed with one key (the CLI identity, for the mesh's SignedManifest mode). */
export function signUpload(text: string, name: string, keyPem: string, creator?: string): SessionEnvelope {
  return { session: text, signatures: [signatureOver(text, name, keyPem, creator)] };
}

/** Whether a signature verifies over the upload of `text` as `name` (what the CAS will decide). */
export function signatureValid(text: string, name: string, sig: UploadSignature, creator?: string): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey(sig.signer);
  } catch {
    return false;
  }
  const type = signerKeyType(key);
  if (typeof type !== 'string') return false;
  try {
    return verify(
      DIGEST[type],
      uploadMessage(name, text, creator),
      { key, dsaEncoding: 'der' },
      Buffer.from(sig.signature, 'base64'),
    );
  } catch {
    return false;
  }
}

/** `FILE.signatures`: JSON `{"signatures": [{"signer": "<SPKI PEM>", "signature": "<base64>"}]}`. */
export const signaturesFileSchema = z.strictObject({
  signatures: z.array(uploadSignatureSchema).max(MAX_UPLOAD_SIGNATURES),
});

export const signaturesFileOf = (sessionFile: string): string => `${sessionFile}.signatures`;

export function readSignatures(path: string): UploadSignature[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('CLI_FILE', `cannot read the signatures file ${path}`, {
      hint: 'it is written by veil session sign add-signature / sign-with-cli-identity (JSON)',
      cause: err,
    });
  }
  const parsed = signaturesFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new CliError('CLI_FILE', `${path} is not a signatures file: ${parsed.error.issues[0]?.message ?? ''}`, {
      hint: `{"signatures": [{"signer": "<public key PEM>", "signature": "<base64>"}]}, at most ${MAX_UPLOAD_SIGNATURES}`,
    });
  }
  return parsed.data.signatures;
}

/** Adds (or replaces, for the same signer key) a signature; returns how many the file holds. */
export function addSignature(path: string, sig: UploadSignature): number {
  const keyHash = signerKeyHash(sig.signer);
  const others = existsSync(path) ? readSignatures(path).filter((s) => signerKeyHash(s.signer) !== keyHash) : [];
  const signatures = [...others, sig];
  if (signatures.length > MAX_UPLOAD_SIGNATURES) {
    throw new CliError('CLI_SIGNATURE', `${path} would hold more than ${MAX_UPLOAD_SIGNATURES} signatures`, {
      hint: `the CAS takes at most ${MAX_UPLOAD_SIGNATURES} signatures per upload; keep those the policy needs`,
    });
  }
  writeFileSync(path, `${JSON.stringify({ signatures }, null, 2)}\n`);
  return signatures.length;
}

/**
 * The signatures an upload sends: `--signatures F`, else `FILE.signatures` when it exists. Each is checked here
 * first, so a session edited after it was signed is named before anything reaches the CAS.
 */
export function signaturesFor(
  upload: { text: string; name: string; creator?: string | undefined },
  sessionFile: string,
  given?: string,
): UploadSignature[] {
  const { text, name, creator } = upload;
  const path = given ?? signaturesFileOf(sessionFile);
  if (given === undefined && !existsSync(path)) return [];
  const signatures = readSignatures(path);
  for (const sig of signatures) {
    if (!signatureValid(text, name, sig, creator)) {
      const by = creator === undefined ? '' : ` uploaded by this client (key hash ${creator})`;
      throw new CliError(
        'CLI_SIGNATURE',
        `the signature by signer ${safeKeyHash(sig.signer)} in ${path} does not verify over ${sessionFile}${by}`,
        {
          hint:
            'the session changed after it was signed (or the signature is not over it), or it creates a session ' +
            'and was signed for another uploader (--uploader): sign it again',
        },
      );
    }
  }
  return signatures;
}

function safeKeyHash(pem: string): string {
  try {
    return signerKeyHash(pem);
  } catch {
    return '(not a public key)';
  }
}
