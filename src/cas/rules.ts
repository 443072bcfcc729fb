import type { WrittenSession } from '../policy/index.js';
import { CasError } from './errors.js';

/**
 * Rules the CAS adds to the session language: things a policy may express but a CAS must not do.
 * A private key is never made public — /v1/values answers anyone without authentication.
 */
export function checkCasRules(session: WrittenSession): void {
  const issues = (session.secrets ?? []).flatMap((secret, i) =>
    secret.export_public && secret.kind === 'private-key'
      ? [{ path: `secrets[${i}].export_public`, message: `private key '${secret.name}' cannot be public` }]
      : [],
  );
  if (issues.length > 0) {
    throw new CasError('CAS_POLICY_INVALID', issues.map((x) => `${x.path}: ${x.message}`).join('\n'), {
      hint: 'export_public is for certificates and other public values; export the key to the sessions that need it instead',
      issues,
    });
  }
}
