/**
 * The mesh's `{{VAR}}` templates (Tera syntax as SCONE uses it): `{{NAME}}`, and a fallback with
 * `{{NAME | default(value="x")}}` (also `default("x")`, numbers and bare words). `$$SCONE::x$$` CAS
 * placeholders are not templates and pass through untouched.
 */
const EXPRESSION = /\{\{(.*?)\}\}/gs;
const VARIABLE =
  /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\|\s*default\s*\(\s*(?:value\s*=\s*)?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^()"'\s]+)\s*\)\s*)?$/;

export interface Rendered {
  text: string;
  /** Variables that had neither a value nor a default. */
  missing: string[];
  /** Expressions that are not a variable with an optional default. */
  invalid: string[];
}

export function renderTemplate(text: string, lookup: (name: string) => string | undefined): Rendered {
  const missing: string[] = [];
  const invalid: string[] = [];
  const out = text.replace(EXPRESSION, (whole, inner: string) => {
    const match = VARIABLE.exec(inner);
    if (!match) {
      invalid.push(whole);
      return whole;
    }
    const value = lookup(match[1]!) ?? (match[2] === undefined ? undefined : unquote(match[2]));
    if (value === undefined) missing.push(match[1]!);
    return value ?? whole;
  });
  return { text: out, missing, invalid };
}

/** The variables a text refers to, with whether each has a default. */
export function templateVariables(text: string): Array<{ name: string; hasDefault: boolean; defaultValue?: string }> {
  return [...text.matchAll(EXPRESSION)].flatMap(([, inner]) => {
    const match = VARIABLE.exec(inner!);
    if (!match) return [];
    return [
      {
        name: match[1]!,
        hasDefault: match[2] !== undefined,
        ...(match[2] !== undefined ? { defaultValue: unquote(match[2]) } : {}),
      },
    ];
  });
}

function unquote(literal: string): string {
  if (/^".*"$|^'.*'$/s.test(literal)) return literal.slice(1, -1).replace(/\\(.)/g, '$1');
  return literal;
}
