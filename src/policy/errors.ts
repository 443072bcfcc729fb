import { VeilError } from '../errors.js';

export type PolicyErrorCode =
  | 'POLICY_YAML_SYNTAX'
  | 'POLICY_TOO_COMPLEX'
  | 'POLICY_SHAPE'
  | 'POLICY_REFERENCE'
  | 'POLICY_LIMIT'
  | 'POLICY_TEMPLATE_VARIABLE';

/** One finding in a session, located by field path and (when known) file position. */
export interface PolicyIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
  file?: string;
}

const HINTS: Record<PolicyErrorCode, string> = {
  POLICY_YAML_SYNTAX: 'fix the YAML syntax at the position shown',
  POLICY_TOO_COMPLEX: 'sessions need no YAML aliases chains or deep nesting; write the values out',
  POLICY_SHAPE: 'fix the fields listed (session language v0.3); unknown fields are refused so typos do not pass silently',
  POLICY_REFERENCE: 'define the secrets, images and issuers the session refers to, or correct the names',
  POLICY_LIMIT:
    'split the session into several (secrets can be exported to and imported from other sessions); ' +
    'the limits are in the README, "Limits"',
  POLICY_TEMPLATE_VARIABLE: 'pass each variable with -e VAR=VALUE, or set it and use --use-env',
};

/** Every problem of a session at once: the message lists them one per line as file:line:col: path: message. */
export class PolicyError extends VeilError<PolicyErrorCode> {
  readonly issues: PolicyIssue[];

  constructor(code: PolicyErrorCode, issues: PolicyIssue[], file = '<session>') {
    const located = issues.map((i) => ({ ...i, file: i.file ?? file }));
    super(code, formatIssues(located, file), { hint: HINTS[code] });
    this.issues = located;
  }
}

function formatIssues(issues: PolicyIssue[], file: string): string {
  const head = `${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'} in the session`;
  const lines = issues.map((i) => {
    const where = i.line !== undefined ? `${i.file}:${i.line}:${i.column ?? 1}` : `${i.file}`;
    return `  ${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
  });
  return [head, ...lines].join('\n');
}
