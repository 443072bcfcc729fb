import { VeilError, type ErrorCatalogue } from '../errors.js';
import { issueLines, reportedIssues, type Issue } from '../issues.js';

export type PolicyErrorCode =
  | 'POLICY_YAML_SYNTAX'
  | 'POLICY_TOO_COMPLEX'
  | 'POLICY_SHAPE'
  | 'POLICY_UNSUPPORTED'
  | 'POLICY_REFERENCE'
  | 'POLICY_LIMIT'
  | 'POLICY_TEMPLATE_VARIABLE';

/** One finding in a session, located by field path and (when known) file position. */
export type PolicyIssue = Issue;

export const POLICY_CATALOGUE: ErrorCatalogue<PolicyErrorCode> = {
  POLICY_YAML_SYNTAX: { summary: 'the session is not valid YAML', hint: 'fix the YAML syntax at the position shown' },
  POLICY_TOO_COMPLEX: {
    summary: 'the session uses more YAML aliases or deeper nesting than allowed',
    hint: 'sessions need no YAML aliases chains or deep nesting; write the values out',
  },
  POLICY_SHAPE: {
    summary: 'fields of the session are missing, unknown, of the wrong type or do not fit together',
    hint: 'fix the fields listed (session language v0.3); unknown fields are refused so typos do not pass silently',
  },
  POLICY_UNSUPPORTED: {
    summary:
      "the session uses constructs of SCONE's session language that Veil does not support (and nothing else is wrong)",
    hint:
      'remove the constructs named, or replace them as their message says; the README section ' +
      '"SCONE\'s session language in Veil" lists what Veil supports and what it refuses',
  },
  POLICY_REFERENCE: {
    summary: 'the session names secrets, images or issuers it does not define, or defines a name twice',
    hint: 'define the secrets, images and issuers the session refers to, or correct the names',
  },
  POLICY_LIMIT: {
    summary: 'the session is over one of the documented session limits (secrets, RSA keys, services, images, files)',
    hint:
      'split the session into several (secrets can be exported to and imported from other sessions); ' +
      'the limits are in the README, "Limits"',
  },
  POLICY_TEMPLATE_VARIABLE: {
    summary: 'the session template uses variables that were not given',
    hint: 'pass each variable with -e VAR=VALUE, or set it and use --use-env',
  },
};

/**
 * Every problem of a session at once (up to MAX_REPORTED_ISSUES, then how many more): the message lists them one
 * per line as file:line:col: path: message.
 */
export class PolicyError extends VeilError<PolicyErrorCode> {
  readonly issues: PolicyIssue[];

  constructor(code: PolicyErrorCode, issues: PolicyIssue[], file = '<session>') {
    const located = issues.map((i) => ({ ...i, file: i.file ?? file }));
    super(code, formatIssues(located, file), { hint: POLICY_CATALOGUE[code].hint });
    this.issues = reportedIssues(located);
  }
}

function formatIssues(issues: PolicyIssue[], file: string): string {
  const head = `${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'} in the session`;
  return [head, ...issueLines(issues, file)].join('\n');
}
