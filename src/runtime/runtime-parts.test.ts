import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
    for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g))
      visit(resolve(dirname(file), (m[1] ?? m[2])!));
  };
  for (const e of entries) visit(join(RUNTIME_ROOT, e));
  return seen;
}

describe('the measured runtime code', () => {
  it('covers every module veil run loads', () => {
    const files = loadedBy(['cli/commands/run.js', 'runtime/unshield.js', 'runtime/container.js']);
    const outside = [...files].map((f) => relative(RUNTIME_ROOT, f)).filter((rel) => !isRuntimeCode(rel));
    assert.deepEqual(
      outside,
      [],
      'a module veil run loads is not measured: add its directory to RUNTIME_PARTS (or take it out of NOT_RUNTIME)',
    );
    assert.ok(files.size > 10);
  });

  it('loads no npm package (the image runtime layer ships none, and the measurement covers only dist/)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-parts-'));
    try {
      const hook = join(dir, 'hook.mjs');
      writeFileSync(
        hook,
        'export async function resolve(s, c, next) { const r = await next(s, c); ' +
          "if (r.url.includes('/node_modules/')) process.stdout.write(r.url + '\\n'); return r; }\n",
      );
      const entries = ['cli/commands/run.js', 'runtime/container.js'].map((e) => pathToFileURL(join(RUNTIME_ROOT, e)));
      const script = entries.map((e) => `await import(${JSON.stringify(e.href)});`).join('');
      const loader = pathToFileURL(hook).href;
      const args = ['--no-warnings', '--experimental-loader', loader, '--input-type=module', '-e', script];
      const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
      const urls = out.split('\n').filter((l) => l.startsWith('file:'));
      const loaded = [...new Set(urls.map((l) => realpathSync(fileURLToPath(l))))];
      assert.deepEqual(loaded, [], 'veil run loads an npm package: it would be unmeasured, and missing in images');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
