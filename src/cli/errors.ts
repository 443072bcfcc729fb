import { VeilError, type ErrorCatalogue } from '../errors.js';

export type CliErrorCode =
  | 'CLI_USAGE'
  | 'CLI_FILE'
  | 'CLI_NOT_ATTESTED'
  | 'CLI_CAS_UNTRUSTED'
  | 'CLI_CAS_UNREACHABLE'
  | 'CLI_CAS_ERROR'
  | 'CLI_HOME'
  | 'CLI_SESSION_MISMATCH'
  | 'CLI_SIGNATURE'
  | 'CLI_ENCRYPTION_KEY_MISMATCH'
  | 'CLI_UNSUPPORTED'
  | 'CLI_HASH_NOT_LOCAL'
  | 'CLI_AUDIT_SHIP';

export const CLI_CATALOGUE: ErrorCatalogue<CliErrorCode> = {
  CLI_USAGE: { summary: 'the command line is not one veil understands (exit code 2)' },
  CLI_FILE: { summary: 'a file named on the command line cannot be read' },
  CLI_NOT_ATTESTED: { summary: 'no CAS (or not the one named) has been attested with veil cas attest' },
  CLI_CAS_UNTRUSTED: { summary: 'the CAS did not prove the identity that was attested, or gave nothing to check' },
  CLI_CAS_UNREACHABLE: { summary: 'the CAS cannot be reached at its address' },
  CLI_CAS_ERROR: { summary: 'the CAS refused the request (its code and message follow), or did not answer JSON' },
  CLI_HOME: { summary: "veil's own state (the attested CASes) cannot be read" },
  CLI_SESSION_MISMATCH: {
    summary: "veil session verify: the CAS's current version of the session is not the one in the file",
  },
  CLI_SIGNATURE: {
    summary: 'a session signature (veil session sign) does not verify over the session, or its key cannot sign',
  },
  CLI_ENCRYPTION_KEY_MISMATCH: {
    summary: "the mesh's cas_encryption_key is not the session-encryption key the pinned CAS publishes",
  },
  CLI_AUDIT_SHIP: {
    summary: 'audit entries cannot be shipped: the webhook refuses them for good, or the output is not an audit file',
  },
  CLI_UNSUPPORTED: { summary: 'an option or mode that Veil does not support (the message names it and says why)' },
  CLI_HASH_NOT_LOCAL: {
    summary: "the session's hash covers config-fragment values the file does not hold (imported, or redacted)",
  },
};

/** Errors of the command line itself; errors of the library pass through with their own codes. */
export class CliError extends VeilError<CliErrorCode> {}

export function usage(message: string, hint: string): CliError {
  return new CliError('CLI_USAGE', message, { hint });
}
