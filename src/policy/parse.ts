import { findingsOfZod, locateFindings, onlyUnsupported, type Finding, type PathSegment } from '../issues.js';
import { PolicyError } from './errors.js';
import { crossReferences } from './references.js';
import { oldLanguageFindings } from './old-language.js';
import { limitFindings, nodeLimitFindings } from './limits.js';
import { fillFragments, type FillOptions } from './fragments.js';
import { sessionSchema, writtenSessionSchema, type Session, type WrittenSession } from './schema.js';
import { secretFieldRules } from './secret-rules.js';
import { remoteImportRules } from './remote.js';
import { parseYaml, type Source } from './yaml-source.js';

/**
 * Parses and checks a session, and fills in its config-fragments (imported ones left out: only the CAS knows
 * them), to check it whole. What it returns is for checking; the CAS judges by `resolveSession` of the
 * session as written, with every fragment known.
 */
export function parseSession(text: string, opts: { file?: string } = {}): Session {
  return resolveSession(parseWrittenSession(text, opts), { unknownImports: 'omit', ...opts });
}

/**
 * The session with its config-fragments filled in, checked by the session schema itself (so a fragment can
 * bring nothing that a section written out could not) and its references checked again. Errors name the
 * fragments filled in; their paths are those of the filled-in session.
 */
export function resolveSession(written: WrittenSession, opts: FillOptions & { file?: string | undefined }): Session {
  const file = opts.file ?? '<session>';
  const filled = fillFragments(written, opts);
  const code = filled.findings.some((f) => f.message.startsWith('no secret')) ? 'POLICY_REFERENCE' : 'POLICY_SHAPE';
  if (filled.findings.length > 0) throw located(code, filled.findings, undefined, file);
  // Nothing filled in or left out: every placeholder where only a fragment may stand was a finding above.
  if (filled.value === written) return written as Session;
  const names = filled.used.map((n) => `'${n}'`).join(', ') || 'none';
  const within = (findings: Finding[]) =>
    findings.map((f) => ({ ...f, message: `${f.message} (with config-fragments ${names} filled in)` }));
  const parsed = sessionSchema.safeParse(filled.value);
  if (!parsed.success) {
    throw located('POLICY_SHAPE', within(findingsOfZod(parsed.error.issues, filled.value)), undefined, file);
  }
  const references = crossReferences(parsed.data);
  if (references.length > 0) throw located('POLICY_REFERENCE', within(references), undefined, file);
  return parsed.data;
}

/**
 * Parses and validates a session as written, in two stages: its shape (every problem at once) and the
 * session limits, then — only when both are right — the references between its parts. Errors carry file,
 * line, column and field path. Every step is linear in the text.
 */
export function parseWrittenSession(text: string, opts: { file?: string } = {}): WrittenSession {
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
  const parsed = writtenSessionSchema.safeParse(source.value);
  if (!parsed.success)
    throw shapeError(findingsOfZod(parsed.error.issues, source.value, [], writtenSessionSchema), source, file);
  const limits = limitFindings(parsed.data);
  if (limits.length > 0) throw located('POLICY_LIMIT', limits, source, file);
  const rules = [...secretFieldRules(parsed.data), ...remoteImportRules(parsed.data)];
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

function located(code: LocatedCode, findings: Finding[], source: Source | undefined, file: string): PolicyError {
  if (!source) return new PolicyError(code, locateFindings(findings), file);
  const first = locateFindings(findings.slice(0, MAX_LOCATED), source);
  const rest = locateFindings(findings.slice(MAX_LOCATED));
  return new PolicyError(code, [...first, ...rest], file);
}

export { formatPath } from '../issues.js';
