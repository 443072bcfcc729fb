import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { chosenIdentity, pinnedCas, veilHome } from '../home.js';
import { defineCommand } from '../spec.js';
import { AUDIT_CAS } from './audit-options.js';

/**
 * `veil audit export`: the CAS's whole audit log as its export file (header, entries, trailer), for an
 * administrator identity. Written to a 0600 temporary file beside FILE, synced, then renamed: FILE is either the
 * previous export or the complete new one.
 */
export const exportCommand = defineCommand(
  {
    name: 'audit export',
    usage: ['--out FILE [-c URL] [--identity DIR]'],
    summary: "writes the CAS's whole audit log to FILE (an administrator's identity: cas serve --audit-admin)",
    options: {
      ...AUDIT_CAS,
      out: { type: 'string', short: 'o', value: 'FILE', description: 'where the export goes (0600, atomically)' },
    },
  },
  async ({ values }, io) => {
    if (!values.out) throw usage('no --out FILE given', 'veil audit export --cas URL --out audit.jsonl');
    const client = new CasClient(pinnedCas(veilHome(io.env), values.cas), chosenIdentity(values.identity, io.env));
    try {
      const lines = await writeAtomically(values.out, await client.auditExport());
      io.out(`# exported ${Math.max(0, lines - 2)} entries to ${values.out}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
);

async function writeAtomically(path: string, body: AsyncIterable<Buffer>): Promise<number> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  let lines = 0;
  let last = 0x0a;
  try {
    for await (const chunk of body) {
      writeSync(fd, chunk);
      for (const byte of chunk) if (byte === 0x0a) lines++;
      if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
    }
    if (lines < 2 || last !== 0x0a) throw truncated(path);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return lines;
}

function truncated(path: string): CliError {
  return new CliError('CLI_AUDIT_SHIP', `the CAS's export ended early; ${path} was left as it was`, {
    hint: 'export again (the CAS log says why it stopped)',
  });
}
