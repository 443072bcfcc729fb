import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { findingsOfZod, formatPath, issueLines, locateFindings } from './issues.js';

const findings = (schema: z.ZodType, input: unknown) => {
  const parsed = schema.safeParse(input);
  assert.ok(!parsed.success);
  return findingsOfZod(parsed.error.issues, input).map((f) => `${formatPath(f.path)}: ${f.message}`);
};

describe('issues from zod', () => {
  const item = z.strictObject({ name: z.string(), tags: z.array(z.string()).optional() });
  const schema = z.strictObject({ items: z.array(item) });

  it('say "is required" only for what is missing, and name each unknown field', () => {
    assert.deepEqual(findings(schema, { items: [{}] }), ['items[0].name: is required']);
    assert.deepEqual(findings(schema, { items: [{ name: [1] }] }), [
      'items[0].name: Invalid input: expected string, received array',
    ]);
    assert.deepEqual(findings(schema, { items: [{ name: 'a', nmae: 'b', x: 1 }] }), [
      "items[0].nmae: unknown field 'nmae'",
      "items[0].x: unknown field 'x'",
    ]);
    const union = z.strictObject({ value: z.union([z.string(), z.number()]) });
    assert.deepEqual(findings(union, {}), ['value: is required']);
    assert.deepEqual(findings(union, { value: [] }), ['value: does not match any accepted form of this field']);
  });

  it('report a union by the form the value comes closest to', () => {
    const target = z.union([
      z.strictObject({ session: z.string(), session_hash: z.string().optional() }),
      z.strictObject({ namespace: z.string() }),
    ]);
    const list = z.strictObject({ export: z.union([target, z.array(target)]) });
    assert.deepEqual(findings(list, { export: { namespace: 'ns', session_hash: 'x' } }), [
      "export.session_hash: unknown field 'session_hash'",
    ]);
    assert.deepEqual(
      findings(list, { export: [{ sesion: 'a' }] }),
      ['export[0].session: is required', "export[0].sesion: unknown field 'sesion'"],
      'a list of the nested union is judged by its items',
    );
  });

  it('are located and printed one a line', () => {
    const located = locateFindings(
      [
        { path: ['a', 0], message: 'bad' },
        { path: [], message: 'worse' },
      ],
      {
        locate: (path) => (path.length > 0 ? { line: 3, column: 5 } : undefined),
      },
    );
    assert.deepEqual(located, [
      { path: 'a[0]', message: 'bad', line: 3, column: 5 },
      { path: '', message: 'worse' },
    ]);
    assert.deepEqual(issueLines(located, 'f.yaml'), ['  f.yaml:3:5: a[0]: bad', '  f.yaml: worse']);
  });
});
