import type { z } from 'zod';
import { PolicyError, type PolicyIssue } from './errors.js';
import { limitFindings } from './limits.js';
import { crossReferences, type Finding } from './references.js';
import { sessionSchema, type Session } from './schema.js';
import { secretFieldRules } from './secret-rules.js';
import { parseYaml, type PathSegment, type Source } from './yaml-source.js';

/**
 * Parses and validates a session in two stages: its shape (every problem at once) and the session limits,
 * then — only when both are right — the references between its parts. Errors carry file, line, column and
 * field path. Every step is linear in the text.
 */
export function parseSession(text: string, opts: { file?: string } = {}): Session {
  const file = opts.file ?? '<session>';
  const source = parseYaml(text, file);
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    throw new PolicyError('POLICY_SHAPE', [{ path: '', message: 'a session must be a YAML map with at least a name', line: 1, column: 1 }], file);
  }
  const parsed = sessionSchema.safeParse(source.value);
  if (!parsed.success) throw located('POLICY_SHAPE', parsed.error.issues.flatMap(fromZod), source, file);
  const limits = limitFindings(parsed.data);
  if (limits.length > 0) throw located('POLICY_LIMIT', limits, source, file);
  const rules = secretFieldRules(parsed.data);
  if (rules.length > 0) throw located('POLICY_SHAPE', rules, source, file);
  const references = crossReferences(parsed.data);
  if (references.length > 0) throw located('POLICY_REFERENCE', references, source, file);
  return parsed.data;
}

function fromZod(issue: z.core.$ZodIssue): Finding[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...path, key], message: `unknown field '${key}'`, atKey: true }));
  }
  if (issue.code === 'invalid_union') {
    // Report the problems of the form whose type the value has (a map vs a list), with their own paths.
    const branch = issue.errors.find((errs) => errs.length > 0 && !errs.some((e) => e.path.length === 0 && e.code === 'invalid_type'));
    if (!branch) return [{ path, message: 'does not match any accepted form of this field' }];
    return branch.flatMap((e) => fromZod({ ...e, path: [...path, ...e.path] } as z.core.$ZodIssue));
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return [{ path, message: 'is required' }];
  return [{ path, message: issue.message }];
}

/** Locating walks the document from its root, so only the first findings get a line: the rest keep their path. */
export const MAX_LOCATED = 100;

type LocatedCode = 'POLICY_SHAPE' | 'POLICY_REFERENCE' | 'POLICY_LIMIT';

function located(code: LocatedCode, findings: Finding[], source: Source, file: string): PolicyError {
  const issues: PolicyIssue[] = findings.map((f, i) => {
    const pos = i < MAX_LOCATED ? source.locate(f.path, f.atKey) : undefined;
    return { path: formatPath(f.path), message: f.message, file, ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
  return new PolicyError(code, issues, file);
}

export function formatPath(path: PathSegment[]): string {
  return path.reduce<string>((out, seg) => (typeof seg === 'number' ? `${out}[${seg}]` : out ? `${out}.${seg}` : seg), '');
}
