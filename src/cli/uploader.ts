import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CliError } from './errors.js';
import { spkiOfPublicKey } from '../secrets/index.js';

/**
 * `--uploader CERT.pem|KEYHASH`: the TLS client identity that will send an upload and so become the CREATOR of
 * what it creates, by key hash (hex SHA-256 of the DER SPKI, as access policies name clients).
 */
export function uploaderKeyHash(given: string, option = '--uploader'): string {
  const t = given.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return t.toLowerCase();
  let pem: string;
  try {
    pem = readFileSync(t, 'utf8');
  } catch (err) {
    throw notAnUploader(option, given, err);
  }
  try {
    const spki = spkiOfPublicKey(createPublicKey(pem));
    return createHash('sha256').update(spki).digest('hex');
  } catch (err) {
    throw notAnUploader(option, given, err);
  }
}

function notAnUploader(option: string, given: string, cause: unknown): CliError {
  return new CliError('CLI_USAGE', `${option} ${given} is neither a key hash nor a readable certificate PEM`, {
    hint: `${option} takes the uploader's certificate (its identity.crt) or its key hash (64 hex digits)`,
    cause,
  });
}

/** The uploader a signature binds: only a create (no predecessor) names it, an update keeps the plain message. */
export function creatorBinding(predecessor: string | null | undefined, uploader: () => string): string | undefined {
  return predecessor ? undefined : uploader();
}
