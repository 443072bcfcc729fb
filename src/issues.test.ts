import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { CasError } from './cas/errors.js';
import { findingsOfZod, formatPath, issueLines, locateFindings, MAX_REPORTED_ISSUES } from './issues.js';
import { ManifestError } from './manifests/errors.js';
import { PolicyError, parseSession } from './policy/index.js';

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

describe('issues reported', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `env.V${i}`, message: 'is not a string' }));

  it('are at most 100 in every error that carries them, the message saying how many more', () => {
    const policy = new PolicyError('POLICY_SHAPE', many(250));
    assert.equal(policy.issues.length, MAX_REPORTED_ISSUES);
    const lines = policy.message.split('\n');
    assert.equal(lines[0], '<session>: 250 errors in the session');
    assert.equal(lines.length, 1 + 100 + 1);
    assert.equal(lines.at(-2), '  <session>: env.V99: is not a string');
    assert.equal(lines.at(-1), '  … and 150 more');
    const manifest = new ManifestError('MANIFEST_SHAPE', many(101), 'service.yaml');
    assert.equal(manifest.issues.length, 100);
    assert.match(manifest.message, /\n {2}… and 1 more$/);
    const cas = new CasError('CAS_POLICY_INVALID', 'x', { issues: many(300) });
    assert.equal((cas.toJSON().error['issues'] as unknown[]).length, 100);
    const exact = new PolicyError('POLICY_SHAPE', many(100));
    assert.equal(exact.issues.length, 100);
    assert.doesNotMatch(exact.message, /more/);
  });

  it('of a session with a fault in each of thousands of entries stay small', () => {
    const env = Array.from({ length: 5000 }, (_, i) => `      V${i}: [1]`).join('\n');
    const text = `name: s\nservices:\n  - name: s\n    image_name: i\n    command: x\n    environment:\n${env}\n`;
    assert.throws(
      () => parseSession(text),
      (e: PolicyError) => e.issues.length === 100 && e.message.length < 20_000 && /… and 4900 more$/.test(e.message),
    );
  });
});
