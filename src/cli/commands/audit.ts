import type { Group } from '../registry.js';

/** `veil audit …`: the CAS's audit log. Each subcommand lives in its own module (audit-verify.ts, …). */
export const AUDIT_GROUP: Group = {
  summary: "the CAS's audit log: verify an export offline",
  subcommands: {
    verify: async () => (await import('./audit-verify.js')).verify,
  },
};
