import { PolicyError, type PolicyIssue } from './errors.js';

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Fills `$VAR` and `${VAR}` templates (scone session create -e / --use-env). `$$` is never the start of a
 * variable, so `$$SCONE::secret$$` placeholders pass through intact. Every undefined variable is reported at once.
 */
export function substituteVariables(
  text: string,
  vars: Record<string, string | undefined>,
  opts: { file?: string } = {},
): string {
  const missing: PolicyIssue[] = [];
  const out = text.replace(VARIABLE, (match, braced: string | undefined, bare: string | undefined, offset: number) => {
    const name = braced ?? bare;
    if (name === undefined) return match;
    const value = vars[name];
    if (value === undefined) missing.push(missingIssue(text, name, offset));
    return value ?? match;
  });
  if (missing.length > 0) throw new PolicyError('POLICY_TEMPLATE_VARIABLE', missing, opts.file);
  return out;
}

function missingIssue(text: string, name: string, offset: number): PolicyIssue {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return { path: '', message: `variable $${name} is not defined`, line, column };
}
