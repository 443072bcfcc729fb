import type { OptionsSpec } from '../spec.js';

/** The CAS and the identity `veil audit` talks to it with (an administrator's, to export). */
export const AUDIT_CAS = {
  cas: { type: 'string', short: 'c', value: 'URL', description: 'the CAS (attested with veil cas attest)' },
  identity: {
    type: 'string',
    value: 'DIR',
    description: 'the client identity: a directory with identity.key and identity.crt (default $VEIL_HOME)',
  },
} as const satisfies OptionsSpec;
