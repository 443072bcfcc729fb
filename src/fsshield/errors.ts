import { VeilError, type ErrorCatalogue } from '../errors.js';

export type ShieldErrorCode =
  | 'SHIELD_TAMPERED'
  | 'SHIELD_MISSING'
  | 'SHIELD_UNEXPECTED'
  | 'SHIELD_KEY'
  | 'SHIELD_IO'
  | 'SHIELD_WORKER'
  | 'SHIELD_OUTPUT';

export const SHIELD_CATALOGUE: ErrorCatalogue<ShieldErrorCode> = {
  SHIELD_TAMPERED: { summary: 'the shielded tree or its metadata failed authentication, or has another tag' },
  SHIELD_MISSING: { summary: 'a file (or the metadata) that the shielded tree must hold is missing' },
  SHIELD_UNEXPECTED: { summary: 'the shielded tree holds a file that its metadata does not list' },
  SHIELD_KEY: { summary: 'a shield key or tag is not of the right form' },
  SHIELD_IO: { summary: 'a path to encrypt is neither a regular file nor a directory' },
  SHIELD_WORKER: { summary: 'a decryption worker thread could not start or stopped before its chunks were done' },
  SHIELD_OUTPUT: { summary: 'a directory where the decrypted tree goes is a link (or not a directory)' },
};

/** Errors of the file-system shield: they name the file that failed, never a key. */
export class ShieldError extends VeilError<ShieldErrorCode> {}
