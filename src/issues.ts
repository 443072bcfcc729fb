import type { z } from 'zod';
import { allowedKeys, suggestion } from './suggest.js';

type ZodIssue = z.core.$ZodIssue;

/**
 * Issues: the findings of the documents Veil validates (sessions, manifests, API requests). Top level, beside
 * errors.ts, so that policy/, manifests/ and cas/ share one type and one reading of zod's issues.
 */

/**
 * The marker of a refusal of what SCONE documents and Veil does not do (policy/unsupported.ts raises it): the
 * construct's name in a custom zod issue's params. Read here, without zod, since veil run loads this module.
 */
export const UNSUPPORTED_PARAM = 'veilUnsupported';

/** A zod issue's construct, when it is a refusal of something Veil does not support. */
export function unsupportedConstruct(issue: { code: string; params?: unknown }): string | undefined {
  if (issue.code !== 'custom' || issue.params === null || typeof issue.params !== 'object') return undefined;
  const construct = (issue.params as Record<string, unknown>)[UNSUPPORTED_PARAM];
  return typeof construct === 'string' ? construct : undefined;
}

/** Whether a refusal is of a whole field (its finding points at the key) rather than of one of its values. */
export function refusesField(issue: object): boolean {
  return (issue as { params?: Record<string, unknown> }).params?.['field'] === true;
}

/** A step of a field path: a map key or a list index. */
export type PathSegment = string | number;

/** One finding, located by field path (`secrets[3].issuer`) and, when known, by file and position. */
export interface Issue {
  path: string;
  message: string;
  line?: number;
  column?: number;
  file?: string;
}

/** A finding before it is located in the text; `atKey` points at the key rather than at its value. */
export interface Finding {
  path: PathSegment[];
  message: string;
  atKey?: boolean;
  /** A construct SCONE documents and Veil refuses ("not supported by Veil"), not a fault of the document. */
  unsupported?: boolean;
}

/** Whatever knows where a path is in the text (the YAML source). */
export interface Locator {
  locate(path: PathSegment[], atKey?: boolean): { line: number; column: number } | undefined;
}

/**
 * zod's issues as findings: every unknown key on its own (pointing at the key, with the allowed key it is closest
 * to when `schema` is given), a missing field as "is required", a refusal of what Veil does not support as such,
 * and a union by the problems of the form the value comes closest to. `input` is what was parsed: zod's issues do
 * not carry the values, so whether a field is missing is read there.
 */
export function findingsOfZod(
  issues: readonly ZodIssue[],
  input: unknown,
  base: PathSegment[] = [],
  schema?: z.ZodType,
): Finding[] {
  return issues.flatMap((issue) => findingsOf(issue, input, base, schema));
}

function findingsOf(issue: ZodIssue, input: unknown, base: PathSegment[], schema?: z.ZodType): Finding[] {
  const path = [...base, ...issue.path.filter((p): p is PathSegment => typeof p !== 'symbol')];
  if (issue.code === 'unrecognized_keys') {
    const allowed = schema ? allowedKeys(schema, path) : [];
    return issue.keys.map((key) => ({ path: [...path, key], message: unknownKey(key, allowed), atKey: true }));
  }
  if (unsupportedConstruct(issue) !== undefined)
    return [{ path, message: issue.message, unsupported: true, atKey: refusesField(issue) }];
  if (isMissing(input, path) && (issue.code === 'invalid_type' || issue.code === 'invalid_union')) {
    return [{ path, message: 'is required' }];
  }
  // A union the schema gave its own message to says it; otherwise the problems of the closest form are told.
  if (issue.code === 'invalid_union' && issue.message !== 'Invalid input') return [{ path, message: issue.message }];
  if (issue.code === 'invalid_union') return closestForm(issue.errors ?? [], input, path, schema);
  if (issue.code === 'invalid_value') return [{ path, message: withNearValue(issue, valueAt(input, path)) }];
  return [{ path, message: issue.message }];
}

/** `kind: asci` → "… — did you mean 'ascii'?" among the values the field takes. */
function withNearValue(issue: { message: string; values: readonly unknown[] }, value: unknown): string {
  if (typeof value !== 'string') return issue.message;
  const near = suggestion(
    value,
    issue.values.filter((v): v is string => typeof v === 'string'),
  );
  return near === undefined ? issue.message : `${issue.message} — did you mean ${near}?`;
}

function valueAt(input: unknown, path: readonly PathSegment[]): unknown {
  let at = input;
  for (const seg of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, seg)) return undefined;
    at = (at as Record<PathSegment, unknown>)[seg];
  }
  return at;
}

function unknownKey(key: string, allowed: readonly string[]): string {
  const near = suggestion(key, allowed);
  return near === undefined ? `unknown field '${key}'` : `unknown field '${key}' — did you mean ${near}?`;
}

/** Only refusals of unsupported constructs: such a document is refused for what Veil lacks, not for a fault. */
export function onlyUnsupported(findings: readonly Finding[]): boolean {
  return findings.length > 0 && findings.every((f) => f.unsupported === true);
}

function isMissing(input: unknown, path: readonly PathSegment[]): boolean {
  let at = input;
  for (const seg of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, seg)) return true;
    at = (at as Record<PathSegment, unknown>)[seg];
  }
  return at === undefined;
}

/**
 * A form whose type the value does not have (a list where a map is accepted) is no candidate; among the others,
 * the forms whose keys the value has are preferred, then the one with the fewest problems (the first on a tie).
 */
function closestForm(
  forms: readonly (readonly ZodIssue[])[],
  input: unknown,
  path: PathSegment[],
  schema?: z.ZodType,
): Finding[] {
  // A value of a form Veil refuses (`unsupportedValues`) is told so, whatever the other forms say.
  const refused = forms.find((errs) => errs.length > 0 && errs.every((e) => unsupportedConstruct(e) !== undefined));
  if (refused) return findingsOfZod(refused, input, path, schema);
  const typed = forms.filter((errs) => errs.length > 0 && !wrongType(errs));
  if (typed.length === 0) return [{ path, message: 'does not match any accepted form of this field' }];
  const fitting = typed.filter((errs) => !errs.some((e) => e.path.length === 0 && e.code === 'unrecognized_keys'));
  const best = (fitting.length > 0 ? fitting : typed).sort((a, b) => a.length - b.length)[0]!;
  return findingsOfZod(best, input, path, schema);
}

/** The value is not of the form's type: at its root, an invalid type, or a union none of whose forms fit. */
function wrongType(errs: readonly ZodIssue[]): boolean {
  const atRoot = errs.filter((e) => e.path.length === 0);
  return atRoot.some((e) => e.code === 'invalid_type' || (e.code === 'invalid_union' && e.errors.every(wrongType)));
}

/** `secrets[3].issuer`: keys joined by dots, indices in brackets. */
export function formatPath(path: readonly PathSegment[]): string {
  const step = (out: string, seg: PathSegment) => {
    if (typeof seg === 'number') return `${out}[${seg}]`;
    return out ? `${out}.${seg}` : seg;
  };
  return path.reduce<string>(step, '');
}

/** Findings as issues, with their positions when a source is given (and knows them). */
export function locateFindings(findings: readonly Finding[], source?: Locator): Issue[] {
  return findings.map((f) => {
    const pos = source?.locate(f.path, f.atKey);
    return { path: formatPath(f.path), message: f.message, ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
}

/**
 * At most this many issues are reported (in an error's message and its `issues`): a document with a fault in
 * each of thousands of entries would otherwise make an answer many times its size, and the time to build it.
 */
export const MAX_REPORTED_ISSUES = 100;

/** The issues an error carries: the first MAX_REPORTED_ISSUES. */
export function reportedIssues<T>(issues: readonly T[]): T[] {
  return issues.slice(0, MAX_REPORTED_ISSUES);
}

/** `  … and N more` after the reported issues, when some were left out. */
export function moreIssues(issues: readonly unknown[]): string[] {
  const more = issues.length - MAX_REPORTED_ISSUES;
  return more > 0 ? [`  … and ${more} more`] : [];
}

/** One line per reported issue, indented: `file:line:col: path: message` (`file` for issues that name none). */
export function issueLines(issues: readonly Issue[], file: string): string[] {
  const lines = reportedIssues(issues).map((i) => {
    const where = `${i.file ?? file}${i.line !== undefined ? `:${i.line}:${i.column ?? 1}` : ''}`;
    return `  ${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
  });
  return [...lines, ...moreIssues(issues)];
}

/** Issues on one line, the first `max` of them (`path: message; path: message; and 3 more`). */
export function describeIssues(issues: readonly Pick<Issue, 'path' | 'message'>[], max = 5): string {
  const shown = issues.slice(0, max).map((i) => `${i.path}: ${i.message}`);
  return issues.length > max ? `${shown.join('; ')}; and ${issues.length - max} more` : shown.join('; ');
}
