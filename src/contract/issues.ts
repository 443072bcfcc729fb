import type { z } from 'zod';
import { findingsOfZod, locateFindings, type Issue } from '../issues.js';

export { describeIssues } from '../issues.js';

/** One thing wrong in a message on the wire, by its field path (`body.evidence.measurement`). */
export type WireIssue = Omit<Issue, 'file' | 'line' | 'column'>;

/**
 * zod's issues with their paths written out from `root` (`body`, `querystring`, `answer`...), read the way every
 * document's issues are (`src/issues.ts`): `input` is what was parsed, so a missing field says "is required".
 */
export function issuesOf(error: z.ZodError, root: string, input: unknown): WireIssue[] {
  return locateFindings(findingsOfZod(error.issues, input === undefined ? undefined : { [root]: input }, [root])).map(
    ({ path, message }) => ({ path, message }),
  );
}
