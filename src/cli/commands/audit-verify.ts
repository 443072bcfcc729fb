import { createReadStream, readFileSync, statSync } from 'node:fs';
import type { AuditHead } from '../../audit/types.js';
import { CliError, usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/**
 * `veil audit verify FILE --ca cas-ca.pem [--head SEQ:HASH]`: an exported audit log checked offline,
 * trusting only the CA certificate. Exit 0 printing the head it verified (keep it for the next --head); exit 1
 * naming the first bad line and seq and what is wrong with it (AUDIT_* codes, README "Audit log"); exit 2 for a
 * command line it does not understand.
 */
export const verify = defineCommand(
  {
    name: 'audit verify',
    usage: ['FILE --ca CA.pem [--head SEQ:HASH]'],
    summary: "checks an exported audit log offline against the CAS's CA: exit 0 with its head, 1 naming the bad line",
    options: {
      ca: { type: 'string', value: 'FILE', description: "the CAS's CA certificate (PEM): the only thing trusted" },
      head: {
        type: 'string',
        value: 'SEQ:HASH',
        description: 'the head printed by the last verification: an older or forked log is refused (rollback)',
      },
    },
    positionals: true,
    notes: ['Exit codes: 0 verified; 1 the log is not intact (or a file cannot be read); 2 usage.'],
  },
  async ({ values, positionals }, io) => {
    if (positionals.length !== 1)
      throw usage('needs exactly one exported log', 'veil audit verify audit.jsonl --ca ca.pem');
    if (!values.ca)
      throw usage('--ca is required', "pass the CAS's CA certificate: veil cas show-certificate > ca.pem");
    const file = positionals[0]!;
    const lastSeenHead = values.head === undefined ? undefined : parseHead(values.head);
    const caPem = readText(values.ca, '--ca');
    readable(file);
    const { verifyAuditExport } = await import('../../audit/verify.js');
    const verified = await verifyAuditExport(createReadStream(file), { caPem, lastSeenHead });
    const head = `${verified.head.seq}:${verified.head.hash}`;
    io.out(
      `${file}: log verified, ${verified.entries} entries, exported ${verified.exportedAt}\n` +
        `head ${head}\n(keep it: the next verification passes --head ${head})\n`,
    );
    return 0;
  },
);

function parseHead(text: string): AuditHead {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text);
  if (!m) throw usage(`--head '${text}' is not SEQ:HASH`, 'pass the head a verification printed, e.g. 42:<64 hex>');
  return { seq: Number(m[1]), hash: m[2]! };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fileError(path, what, err);
  }
}

/** Checked before streaming: a missing file is CLI_FILE, not an error from inside the verifier. */
function readable(path: string): void {
  try {
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a file'), { code: 'not a file' });
  } catch (err) {
    throw fileError(path, 'the log', err);
  }
}

function fileError(path: string, what: string, err: unknown): CliError {
  const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new CliError('CLI_FILE', `cannot read ${what} ${path}: ${why}`, { hint: 'check the path', cause: err });
}
