import type { z } from 'zod';
import { PolicyError, formatPath } from '../policy/index.js';
import { parseYaml, type PathSegment, type Source } from '../policy/yaml-source.js';
import { ManifestError, type ManifestErrorCode, type ManifestIssue } from './errors.js';

export type { PathSegment, Source };

/** A finding before it is located in the text. */
export interface Finding {
  path: PathSegment[];
  message: string;
  atKey?: boolean;
}

/** Parses a manifest's YAML (the session parser's, with its limits on aliases and depth). */
export function readYaml(text: string, file: string): Source {
  try {
    return parseYaml(text, file);
  } catch (err) {
    if (err instanceof PolicyError) throw new ManifestError('MANIFEST_YAML', err.issues.map(({ file: _f, ...i }) => i), file, { cause: err });
    throw err;
  }
}

/** Shape first: every problem at once, each with its path and position. */
export function validateShape<T>(schema: z.ZodType<T>, source: Source, file: string): T {
  const parsed = schema.safeParse(source.value);
  if (parsed.success) return parsed.data;
  throw located('MANIFEST_SHAPE', parsed.error.issues.flatMap(fromZod), source, file);
}

export function located(code: ManifestErrorCode, findings: Finding[], source: Source | undefined, file: string): ManifestError {
  const issues: ManifestIssue[] = findings.map((f) => {
    const pos = source?.locate(f.path, f.atKey);
    return { path: formatPath(f.path), message: f.message, ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
  return new ManifestError(code, issues, file);
}

/**
 * A union (e.g. mesh `env`: grouped or flat entries) reports the problems of the form the entry comes
 * closest to — the one with the fewest problems, not counting forms whose own keys it does not have.
 */
function closestForm(issue: z.core.$ZodIssue & { code: 'invalid_union' }, path: PathSegment[]): Finding[] {
  const forms = (issue.errors ?? []).filter((errs) => errs.length > 0);
  const fitting = forms.filter((errs) => !errs.some((e) => e.code === 'unrecognized_keys' && e.path.length === 0));
  const best = (fitting.length > 0 ? fitting : forms).sort((a, b) => a.length - b.length)[0];
  if (!best) return [{ path, message: 'does not match any accepted form of this field' }];
  return best.flatMap((e) => fromZod({ ...e, path: [...path, ...e.path] } as z.core.$ZodIssue));
}

function fromZod(issue: z.core.$ZodIssue): Finding[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: [...path, key], message: `unknown field '${key}'`, atKey: true }));
  if (issue.code === 'invalid_union') return closestForm(issue, path);
  if (issue.code === 'invalid_type' && issue.input === undefined) return [{ path, message: 'is required' }];
  return [{ path, message: issue.message }];
}
