import type { Group } from '../registry.js';

/** `veil audit …`: the CAS's audit log (README "Audit log"). Each subcommand lives in its own module. */
export const AUDIT_GROUP: Group = {
  summary: "the CAS's audit log: verify an export offline, export it, follow it into a file or a webhook",
  subcommands: {
    verify: async () => (await import('./audit-verify.js')).verify,
    export: async () => (await import('./audit-export.js')).exportCommand,
    follow: async () => (await import('./audit-follow.js')).followCommand,
  },
};
