import { PolicyError, type PolicyIssue } from './errors.js';
import { lexemes } from './yaml-lexemes.js';

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Fills `$VAR` and `${VAR}` templates (scone session create -e / --use-env). `$$` is never the start of a
 * variable, so `$$SCONE::secret$$` placeholders pass through intact. A `$VAR` inside a YAML comment is not a
 * variable (a comment such as `# upload with -e $SESSION` needs no value), while `#` and `$` in quoted strings and
 * block scalars are text as ever. Every undefined variable is reported at once.
 */
export function substituteVariables(
  text: string,
  vars: Record<string, string | undefined>,
  opts: { file?: string } = {},
): string {
  const missing: PolicyIssue[] = [];
  const comments = commentRanges(text);
  let next = 0; // comments are in text order, and so are the matches
  const out = text.replace(VARIABLE, (match, braced: string | undefined, bare: string | undefined, offset: number) => {
    while (next < comments.length && comments[next]![1] <= offset) next++;
    const inComment = next < comments.length && comments[next]![0] <= offset;
    const name = braced ?? bare;
    if (name === undefined || inComment) return match;
    const value = vars[name];
    if (value === undefined) missing.push(missingIssue(text, name, offset));
    return value ?? match;
  });
  if (missing.length > 0) throw new PolicyError('POLICY_TEMPLATE_VARIABLE', missing, opts.file);
  return out;
}

/** [start, end) of every comment, from the YAML library's lexer (what a regex cannot tell: `"#"`, `|` blocks). */
export function commentRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const t of lexemes(text)) if (t.type === 'comment') ranges.push([t.offset, t.offset + t.source.length]);
  return ranges;
}

function missingIssue(text: string, name: string, offset: number): PolicyIssue {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return { path: '', message: `variable $${name} is not defined`, line, column };
}
