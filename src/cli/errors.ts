import { VeilError } from '../errors.js';

export type CliErrorCode =
  | 'CLI_USAGE'
  | 'CLI_FILE'
  | 'CLI_NOT_ATTESTED'
  | 'CLI_CAS_UNTRUSTED'
  | 'CLI_CAS_UNREACHABLE'
  | 'CLI_CAS_ERROR'
  | 'CLI_HOME';

/** Errors of the command line itself; errors of the library pass through with their own codes. */
export class CliError extends VeilError<CliErrorCode> {}

export function usage(message: string, hint: string): CliError {
  return new CliError('CLI_USAGE', message, { hint });
}
