import type { z } from 'zod';
import { findingsOfZod, locateFindings, type Finding, type PathSegment } from '../issues.js';
import { PolicyError } from '../policy/index.js';
import { parseYaml, type Source } from '../policy/yaml-source.js';
import { ManifestError, type ManifestErrorCode } from './errors.js';

export type { Finding, PathSegment, Source };

/** Parses a manifest's YAML (the session parser's, with its limits on aliases and depth). */
export function readYaml(text: string, file: string): Source {
  try {
    return parseYaml(text, file);
  } catch (err) {
    if (err instanceof PolicyError)
      throw new ManifestError(
        'MANIFEST_YAML',
        err.issues.map(({ file: _f, ...i }) => i),
        file,
        { cause: err },
      );
    throw err;
  }
}

/** Shape first: every problem at once, each with its path and position. */
export function validateShape<T>(schema: z.ZodType<T>, source: Source, file: string): T {
  const parsed = schema.safeParse(source.value);
  if (parsed.success) return parsed.data;
  throw located('MANIFEST_SHAPE', findingsOfZod(parsed.error.issues, source.value), source, file);
}

export function located(
  code: ManifestErrorCode,
  findings: Finding[],
  source: Source | undefined,
  file: string,
): ManifestError {
  return new ManifestError(code, locateFindings(findings, source), file);
}
