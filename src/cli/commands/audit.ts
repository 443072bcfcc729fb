import type { Group } from '../registry.js';

/** `veil audit …`: the CAS's audit log, exported and shipped (README "Audit log: events and GET /v1/audit"). */
export const AUDIT_GROUP: Group = {
  summary: "the CAS's audit log: export it, follow it into a file or a webhook",
  subcommands: {
    export: async () => (await import('./audit-export.js')).exportCommand,
    follow: async () => (await import('./audit-follow.js')).followCommand,
  },
};
