import { AUDIT_GROUP } from './commands/audit.js';
import type { Command } from './spec.js';

type Load = () => Promise<Command>;
export type Entry = Load | Group;

/**
 * Subcommands nest (`veil session sign add-signature`); `default` runs when the next word is none of them
 * (`veil session sign FILE`).
 */
export interface Group {
  summary: string;
  subcommands: Record<string, Entry>;
  default?: Load;
}

/**
 * Every command of `veil`, loaded on demand: `veil run` sits on the launch path and must not pay for the CAS
 * server's modules. A subcommand is one line here: its module exports a `defineCommand(...)` (docs/architecture.md,
 * cli/).
 */
export const COMMANDS: Record<string, Entry> = {
  apply: async () => (await import('./commands/apply.js')).apply,
  up: async () => (await import('./commands/up.js')).upCommand,
  sconify: async () => (await import('./commands/sconify.js')).sconify,
  run: async () => (await import('./commands/run.js')).runCommand,
  measure: async () => (await import('./commands/measure.js')).measureCommand,
  attestation: {
    summary: 'TEE evidence, verified offline',
    subcommands: {
      verify: async () => (await import('./commands/attestation.js')).verify,
    },
  },
  audit: AUDIT_GROUP,
  cas: {
    summary: 'the CAS: serve it, attest it, back it up and restore it, build its image and chart',
    subcommands: {
      serve: async () => (await import('./commands/cas-serve.js')).serve,
      attest: async () => (await import('./commands/cas.js')).attest,
      'show-certificate': async () => (await import('./commands/cas.js')).showCertificate,
      'show-identification': async () => (await import('./commands/cas-identification.js')).showIdentification,
      image: async () => (await import('./commands/cas.js')).casImage,
      chart: async () => (await import('./commands/cas.js')).casChart,
      migrate: async () => (await import('./commands/cas-migrate.js')).migrate,
      backup: async () => (await import('./commands/cas-backup.js')).backup,
      restore: async () => (await import('./commands/cas-backup.js')).restore,
    },
  },
  session: {
    summary: 'sessions (policies) on the CAS, as the scone CLI handles them',
    subcommands: {
      create: async () => (await import('./commands/session.js')).create,
      update: async () => (await import('./commands/session.js')).update,
      read: async () => (await import('./commands/session.js')).read,
      verify: async () => (await import('./commands/session.js')).verify,
      check: async () => (await import('./commands/session.js')).check,
      'calculate-hash': async () => (await import('./commands/session.js')).calculateHash,
      encrypt: async () => (await import('./commands/session-encrypt.js')).sessionEncrypt,
      sign: {
        summary: 'governance signatures over a session (scone session sign)',
        subcommands: {
          'generate-message-to-be-signed': async () => (await import('./commands/session-sign.js')).generate,
          'add-signature': async () => (await import('./commands/session-sign.js')).add,
          'sign-with-cli-identity': async () => (await import('./commands/session-sign.js')).withIdentity,
        },
      },
    },
  },
  self: {
    summary: "this CLI's identity (the client certificate it talks to the CAS with)",
    subcommands: {
      show: async () => (await import('./commands/self.js')).show,
      'show-key-hash': async () => (await import('./commands/self.js')).showKeyHash,
      'show-certificate': async () => (await import('./commands/self.js')).showCertificate,
    },
  },
  host: {
    summary: "this host's platform ID (sessions list it in platforms for simulation)",
    subcommands: {
      id: async () => (await import('./commands/host.js')).id,
      show: async () => (await import('./commands/host.js')).show,
    },
  },
  fspf: {
    summary: 'the file-system shield',
    subcommands: {
      encrypt: async () => (await import('./commands/fspf.js')).encrypt,
    },
  },
};

export function isGroup(entry: Entry): entry is Group {
  return typeof entry !== 'function';
}

/** Every command under these entries, depth first (the overview, a group's help, the test that walks them). */
export async function allCommands(entries: Iterable<Entry>): Promise<Command[]> {
  const out: Command[] = [];
  for (const entry of entries) {
    if (!isGroup(entry)) out.push(await entry());
    else {
      if (entry.default) out.push(await entry.default());
      out.push(...(await allCommands(Object.values(entry.subcommands))));
    }
  }
  return out;
}
