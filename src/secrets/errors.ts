import { VeilError, type ErrorCatalogue } from '../errors.js';

export type SecretsErrorCode =
  | 'SECRET_INVALID_VALUE'
  | 'SECRET_UNSUPPORTED'
  | 'SECRET_DEPENDENCY'
  | 'SECRET_IMPORT_MISSING'
  | 'SECRET_RENDER';

export const SECRETS_CATALOGUE: ErrorCatalogue<SecretsErrorCode> = {
  SECRET_INVALID_VALUE: { summary: 'a value given (key, certificate, size, name, duration) does not fit its secret' },
  SECRET_UNSUPPORTED: { summary: 'a kind, key type or value form that the CAS does not support' },
  SECRET_DEPENDENCY: { summary: 'a secret names another that is missing, of the wrong kind, or depends on itself' },
  SECRET_IMPORT_MISSING: { summary: 'an imported secret needed here is not available (or not with its private key)' },
  SECRET_RENDER: { summary: 'a placeholder cannot be rendered from its secret (suffix and kind do not fit)' },
};

/** Errors of secret generation and rendering: they name the secret, never its value. */
export class SecretsError extends VeilError<SecretsErrorCode> {}
