import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { loadIdentity, pinnedCas, veilHome } from '../home.js';
import { defineCommand } from '../spec.js';

const REFUSED_FLAG = { type: 'boolean', description: 'not supported by Veil (see below)' } as const;
const REFUSED: Record<'s' | 'C' | 'S' | 'T', string> = {
  s: 'the CAS software key',
  C: 'the CAS certificate hash',
  S: 'the CAS software certificate hash',
  T: 'the CAS TCB information',
};

/**
 * `veil cas show-identification` (SCONE: `scone cas show-identification`): asks the pinned CAS (GET /v1/identity
 * over TLS that trusts only the pinned CA). `-c`: the CAS key, the CA fingerprint a mesh's `cas_key` names;
 * `--session-encryption-key`: the key sessions are encrypted to (a mesh's `cas_encryption_key`).
 */
export const showIdentification = defineCommand(
  {
    name: 'cas show-identification',
    usage: ['[URL] [-c] [--session-encryption-key]'],
    summary: "the pinned CAS's key (CA fingerprint) and its session-encryption key",
    options: {
      c: { type: 'boolean', description: "only the CAS key (the CA fingerprint a mesh's cas_key names)" },
      'session-encryption-key': {
        type: 'boolean',
        description: "only the session-encryption key (a mesh's cas_encryption_key)",
      },
      cas: { type: 'string', value: 'URL', description: 'the CAS (attested with veil cas attest; or as argument)' },
      s: REFUSED_FLAG,
      C: REFUSED_FLAG,
      S: REFUSED_FLAG,
      T: REFUSED_FLAG,
    },
    positionals: true,
    notes: [
      "-s, -C, -S, -T (SCONE's software key, certificate hashes, TCB) are not supported by Veil: its CAS is known",
      'by one key, its CA fingerprint (-c)',
    ],
  },
  async ({ values, positionals }, io) => {
    for (const flag of Object.keys(REFUSED) as Array<keyof typeof REFUSED>) {
      if (values[flag]) {
        throw new CliError('CLI_UNSUPPORTED', `-${flag} (${REFUSED[flag]}) is not supported by Veil`, {
          hint:
            "Veil's CAS is known by one key, its CA fingerprint (-c), and sessions are encrypted to one more " +
            '(--session-encryption-key)',
        });
      }
    }
    if (positionals.length > 1)
      throw usage(
        `unexpected '${positionals[1]}'`,
        'veil cas show-identification [URL] [-c] [--session-encryption-key]',
      );
    const home = veilHome(io.env);
    const client = new CasClient(pinnedCas(home, values.cas ?? positionals[0]), loadIdentity(home));
    try {
      const identity = await client.identity();
      const lines: string[] = [];
      if (values.c) lines.push(identity.ca_fingerprint);
      if (values['session-encryption-key']) lines.push(identity.session_encryption_key);
      if (lines.length === 0) {
        lines.push(
          `CAS key (CA fingerprint, a mesh's cas_key): ${identity.ca_fingerprint}`,
          `session encryption key (a mesh's cas_encryption_key): ${identity.session_encryption_key}`,
          `session encryption key hash: ${identity.session_encryption_key_hash}`,
          `session encryption suite: ${identity.session_encryption_suite}`,
        );
      }
      io.out(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
);
