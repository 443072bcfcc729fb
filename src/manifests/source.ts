import type { z } from 'zod';
import { findingsOfZod, locateFindings, onlyUnsupported, type Finding, type PathSegment } from '../issues.js';
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

/**
 * Shape first: every problem at once, each with its path and position (an unknown key with the allowed key it is
 * closest to); when the only problems are fields Veil does not support, the code says so (MANIFEST_UNSUPPORTED).
 */
export function validateShape<T>(schema: z.ZodType<T>, source: Source, file: string): T {
  const parsed = schema.safeParse(source.value);
  if (parsed.success) return parsed.data;
  const findings = findingsOfZod(parsed.error.issues, source.value, [], schema);
  throw located(onlyUnsupported(findings) ? 'MANIFEST_UNSUPPORTED' : 'MANIFEST_SHAPE', findings, source, file);
}

export function located(
  code: ManifestErrorCode,
  findings: Finding[],
  source: Source | undefined,
  file: string,
): ManifestError {
  return new ManifestError(code, locateFindings(findings, source), file);
}
