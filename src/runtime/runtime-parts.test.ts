import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { isRuntimeCode } from '../attestation/measure.js';
import { RUNTIME_ROOT } from './program.js';

/** Every module `veil run` can load (static imports, and dynamic ones on its own path). */
function loadedBy(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)) visit(resolve(dirname(file), (m[1] ?? m[2])!));
  };
  entries.forEach((e) => visit(join(RUNTIME_ROOT, e)));
  return seen;
}

describe('the measured runtime code', () => {
  it('covers every module veil run loads', () => {
    const files = loadedBy(['cli/commands/run.js', 'runtime/unshield.js', 'runtime/container.js']);
    const outside = [...files].map((f) => relative(RUNTIME_ROOT, f)).filter((rel) => !isRuntimeCode(rel));
    assert.deepEqual(outside, [], 'a module veil run loads is not measured: add its directory to RUNTIME_PARTS (or take it out of NOT_RUNTIME)');
    assert.ok(files.size > 10);
  });
});
