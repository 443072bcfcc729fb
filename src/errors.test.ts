import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CATALOGUES, errorsMarkdown } from './error-catalogue.js';

/** Tests run from dist/; the catalogues are checked against the sources they come from. */
const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

/**
 * The only codes that may be a 5xx: what the CAS itself fails at, never what a client sent. A store that does not
 * answer (PostgreSQL down or failing over) is the CAS's side too, and 503 tells clients and load balancers to
 * retry, possibly on another replica.
 */
const SERVER_SIDE = new Set(['CAS_INTERNAL', 'CAS_TEE_UNAVAILABLE', 'CAS_STORE_UNAVAILABLE', 'CAS_AUDIT_UNAVAILABLE']);
// Readiness refuses while the CAS's keys are not loaded: the CAS's own state, not the client's request.
SERVER_SIDE.add('CAS_NOT_READY');

function sources(dir = SRC): Array<{ file: string; text: string }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [{ file: path.slice(SRC.length), text: readFileSync(path, 'utf8') }] : [];
  });
}

const all = sources();
/** Where codes are raised: the code, not its tests, and not the catalogues themselves. */
const raising = all.filter(({ file }) => !file.endsWith('.test.ts') && !file.endsWith('errors.ts'));
const catalogued = new Set(CATALOGUES.flatMap((c) => Object.keys(c.entries)));

/** The closed union of a module's errors.ts, as written (`export type XErrorCode = | 'A' | 'B';`). */
function declaredUnion(module: string): string[] | undefined {
  const text = readFileSync(join(SRC, module, 'errors.ts'), 'utf8');
  const union = /export type \w+ErrorCode =([^;]*);/.exec(text)?.[1];
  if (union === undefined || union.includes('keyof')) return undefined;
  return [...union.matchAll(/'([A-Z0-9_]+)'/g)].map((m) => m[1]!);
}

describe('the error catalogues', () => {
  for (const { module, entries } of CATALOGUES) {
    it(`${module}: its union and its catalogue agree, and every code is raised somewhere`, () => {
      const codes = Object.keys(entries);
      const union = declaredUnion(module);
      if (union) assert.deepEqual([...codes].sort(), [...union].sort(), `${module}/errors.ts: union and catalogue`);
      const prefix = codes[0]!.slice(0, codes[0]!.indexOf('_') + 1);
      for (const code of codes) {
        assert.ok(code.startsWith(prefix), `${code}: the codes of ${module} share the prefix ${prefix}`);
        assert.ok(entries[code]!.summary.length > 10, `${code}: a summary says what the code means`);
        const raised = raising.some(({ text }) => text.includes(`'${code}'`));
        assert.ok(raised, `${code} is in the catalogue of ${module} but nothing raises it: remove it`);
      }
    });
  }

  it('cas: client errors are 4xx; only what the CAS itself fails at is a 5xx', () => {
    const cas = CATALOGUES.find((c) => c.module === 'cas')!;
    for (const [code, { status }] of Object.entries(cas.entries)) {
      assert.ok(status !== undefined && Number.isInteger(status), `${code} has a status`);
      if (SERVER_SIDE.has(code)) assert.ok(status >= 500 && status <= 599, `${code}: ${status}`);
      else assert.ok(status >= 400 && status <= 499, `${code} is a client error, not ${status}`);
    }
  });

  it('cover every module error class', () => {
    const classes = all.filter(({ file, text }) => file.endsWith('errors.ts') && /extends VeilError</.test(text));
    const modules = classes.map(({ file }) => file.slice(0, -'/errors.ts'.length));
    assert.deepEqual(modules.sort(), CATALOGUES.map((c) => c.module).sort(), 'a module error class has no catalogue');
  });

  it('hold every code the sources use (no made-up code)', () => {
    const prefixes = [...new Set([...catalogued].map((code) => code.slice(0, code.indexOf('_') + 1)))];
    const literal = new RegExp(`['"\`]((?:${prefixes.join('|')})[A-Z0-9_]+)['"\`]`, 'g');
    const unknown = all.flatMap(({ file, text }) => {
      const codes = [...text.matchAll(literal)].map((m) => m[1]!);
      return codes.filter((code) => !catalogued.has(code)).map((code) => `${file}: ${code}`);
    });
    assert.deepEqual(unknown, []);
  });

  it('are documented: docs/errors.md is generated from them', () => {
    assert.equal(readFileSync(DOC, 'utf8'), errorsMarkdown(), 'docs/errors.md is stale: run npm run docs:errors');
  });
});
