import type { z } from 'zod';

/** One thing wrong in a message on the wire, by its field path (`body.evidence.measurement`). */
export interface WireIssue {
  path: string;
  message: string;
}

/** zod's issues with their paths written out from `root` (`body`, `querystring`, `answer`...). */
export function issuesOf(error: z.ZodError, root: string): WireIssue[] {
  return error.issues.map((issue) => ({ path: [root, ...issue.path.map(pathPart)].join('.'), message: issue.message }));
}

export function describeIssues(issues: WireIssue[], max = 5): string {
  const shown = issues.slice(0, max).map((i) => `${i.path}: ${i.message}`);
  return issues.length > max ? `${shown.join('; ')}; and ${issues.length - max} more` : shown.join('; ');
}

function pathPart(part: PropertyKey): string {
  return typeof part === 'symbol' ? part.toString() : String(part);
}
