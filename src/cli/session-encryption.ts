import { parsePublicKey, sealSession } from '../encryption/index.js';
import type { CasClient } from './cas-client.js';
import { CliError } from './errors.js';

/**
 * The CAS an upload is encrypted to: its session-encryption key (raw X25519) and its CA fingerprint; and the key
 * hash of the TLS identity that will send it (the envelope binds it; the CAS refuses it from anyone else).
 */
export interface EncryptionTarget {
  publicKey: Buffer;
  fingerprint: string;
  uploader: string;
}

/**
 * What is inside every envelope the CLI makes: the session's text (YAML, or JSON, which is YAML), as a plain
 * upload sends it. The CAS hands it, with this type, to the same handler as a plain upload.
 */
export const INNER_CONTENT_TYPE = 'application/yaml';

/**
 * The key the pinned CAS publishes (GET /v1/identity, its CA fingerprint checked against the pin); the uploader
 * is `client`'s own identity unless another is named (`--uploader`: CI sends what a person encrypted).
 */
export async function publishedTarget(client: CasClient, uploader = client.uploader): Promise<EncryptionTarget> {
  const identity = await client.identity();
  return {
    publicKey: Buffer.from(identity.session_encryption_key, 'hex'),
    fingerprint: identity.ca_fingerprint,
    uploader,
  };
}

/** `cas_encryption_key`, when the mesh gives one, must be the key the CAS publishes: a mismatch names both. */
export function checkExpectedKey(target: EncryptionTarget, expected: string | undefined, where: string): void {
  if (expected === undefined) return;
  const given = parsePublicKey(expected, where);
  if (given.equals(target.publicKey)) return;
  throw new CliError(
    'CLI_ENCRYPTION_KEY_MISMATCH',
    `${where} is ${given.toString('hex')}, but the CAS (CA fingerprint ${target.fingerprint}) publishes ` +
      `session-encryption key ${target.publicKey.toString('hex')}`,
    {
      hint:
        "compare with 'veil cas show-identification --session-encryption-key'; a CAS whose key differs from the " +
        'one you were given is not the CAS you meant, unless its key was rotated',
    },
  );
}

/** One upload encrypted to `target`: the envelope as JSON text, for a file or PUT /v1/encrypted_sessions. */
export async function encryptUpload(target: EncryptionTarget, text: string): Promise<string> {
  const envelope = await sealSession({
    publicKey: target.publicKey,
    casFingerprint: target.fingerprint,
    uploader: target.uploader,
    contentType: INNER_CONTENT_TYPE,
    plaintext: text,
  });
  return `${JSON.stringify(envelope, null, 2)}\n`;
}
