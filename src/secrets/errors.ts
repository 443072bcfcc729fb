import { VeilError } from '../errors.js';

export type SecretsErrorCode =
  | 'SECRET_INVALID_VALUE'
  | 'SECRET_UNSUPPORTED'
  | 'SECRET_DEPENDENCY'
  | 'SECRET_IMPORT_MISSING'
  | 'SECRET_RENDER';

/** Errors of secret generation and rendering: they name the secret, never its value. */
export class SecretsError extends VeilError<SecretsErrorCode> {}
