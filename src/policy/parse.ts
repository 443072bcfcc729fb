import { findingsOfZod, locateFindings, onlyUnsupported, type Finding, type PathSegment } from '../issues.js';
import { PolicyError } from './errors.js';
import { crossReferences } from './references.js';
import { oldLanguageFindings } from './old-language.js';
import { limitFindings, nodeLimitFindings } from './limits.js';
import { sessionSchema, type Session } from './schema.js';
import { secretFieldRules } from './secret-rules.js';
import { parseYaml, type Source } from './yaml-source.js';

/**
 * Parses and validates a session in two stages: its shape (every problem at once) and the session limits,
 * then — only when both are right — the references between its parts. Errors carry file, line, column and
 * field path. Every step is linear in the text.
 */
export function parseSession(text: string, opts: { file?: string } = {}): Session {
  const file = opts.file ?? '<session>';
  const source = parseYaml(text, file);
  const nodes = nodeLimitFindings(source.value);
  if (nodes.length > 0) throw located('POLICY_LIMIT', nodes, source, file);
  if (source.value === null || typeof source.value !== 'object' || Array.isArray(source.value)) {
    throw new PolicyError(
      'POLICY_SHAPE',
      [{ path: '', message: 'a session must be a YAML map with at least a name', line: 1, column: 1 }],
      file,
    );
  }
  const old = oldLanguageFindings(source.value as Record<string, unknown>);
  if (old.length > 0) throw located('POLICY_UNSUPPORTED', old, source, file);
  const proto = protoKeys(source.value, []);
  if (proto.length > 0) throw located('POLICY_SHAPE', proto, source, file);
  const parsed = sessionSchema.safeParse(source.value);
  if (!parsed.success)
    throw shapeError(findingsOfZod(parsed.error.issues, source.value, [], sessionSchema), source, file);
  const limits = limitFindings(parsed.data);
  if (limits.length > 0) throw located('POLICY_LIMIT', limits, source, file);
  const rules = secretFieldRules(parsed.data);
  if (rules.length > 0) throw located('POLICY_SHAPE', rules, source, file);
  const references = crossReferences(parsed.data);
  if (references.length > 0) throw located('POLICY_REFERENCE', references, source, file);
  return parsed.data;
}

/** A session whose only problems are constructs Veil does not support is refused as such (POLICY_UNSUPPORTED). */
function shapeError(findings: Finding[], source: Source, file: string): PolicyError {
  return located(onlyUnsupported(findings) ? 'POLICY_UNSUPPORTED' : 'POLICY_SHAPE', findings, source, file);
}

/** Maps become plain objects (zod records, environments), where a `__proto__` key would silently vanish. */
function protoKeys(value: unknown, path: PathSegment[]): Finding[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => protoKeys(v, [...path, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) =>
    k === '__proto__'
      ? [{ path: [...path, k], message: "a key named '__proto__' is not accepted (it would be lost)", atKey: true }]
      : protoKeys(v, [...path, k]),
  );
}

/** Locating walks the document from its root, so only the first findings get a line: the rest keep their path. */
export const MAX_LOCATED = 100;

type LocatedCode = 'POLICY_SHAPE' | 'POLICY_UNSUPPORTED' | 'POLICY_REFERENCE' | 'POLICY_LIMIT';

function located(code: LocatedCode, findings: Finding[], source: Source, file: string): PolicyError {
  const first = locateFindings(findings.slice(0, MAX_LOCATED), source);
  const rest = locateFindings(findings.slice(MAX_LOCATED));
  return new PolicyError(code, [...first, ...rest], file);
}

export { formatPath } from '../issues.js';
