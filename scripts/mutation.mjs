#!/usr/bin/env node
// Mutation check of the security rules: each entry of scripts/mutations/*.json removes or weakens one rule,
// and at least one of its tests must then fail. A mutation its tests survive is a rule no test protects.
//
//   npm run mutation                 all mutations
//   npm run mutation -- nonce ca-pin only those whose name contains one of the words
//
// The working tree is never touched: src/, tsconfig.json and package.json are copied to a temporary
// directory (node_modules and the test data are linked) and built there once with tsc. Each mutation is
// applied to its TypeScript source, that one file is transpiled alone (the `find` text may hold types),
// written over its compiled .js, its tests run, and the compiled file is put back.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// bin/ is copied, not linked: Node resolves a link to its real path, so bin/veil.js would import the unmutated
// dist/ of the checkout, and a test that runs `veil` would test the mutant only in its own process.
const LINKED = ['node_modules', 'examples', 'testdata', 'schemas', '.cache'];
const COPIED = ['tsconfig.json', 'package.json', 'bin'];
const TEST_TIMEOUT_MS = 120_000;
// The baseline runs every listed test at once (≈ 60 s on an idle 2-core machine): its own, larger limit.
const BASELINE_TIMEOUT_MS = 600_000;

class MutationSetupError extends Error {}

function fail(message) {
  throw new MutationSetupError(message);
}

function loadMutations(filters) {
  // One file per area (core.json, governance.json, ...): parallel work adds entries without editing one list.
  const dir = join(root, 'scripts', 'mutations');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const list = files.flatMap((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
  const names = new Set();
  for (const m of list) {
    const keys = Object.keys(m).sort().join(',');
    if (keys !== 'file,find,name,replace,tests' && keys !== 'file,find,name,replace,rule,tests') {
      fail(`mutation ${JSON.stringify(m.name)} has fields ${keys}; expected name, rule?, file, find, replace, tests`);
    }
    if (names.has(m.name)) fail(`two mutations are named ${m.name}`);
    names.add(m.name);
  }
  return filters.length === 0 ? list : list.filter((m) => filters.some((f) => m.name.includes(f)));
}

/** The one place `find` occurs; anything else is drift between this list and the code, so an error. */
function mutatedSource(m) {
  const path = join(root, m.file);
  if (!m.file.startsWith('src/') || !m.file.endsWith('.ts') || !existsSync(path)) {
    fail(`${m.name}: no source file ${m.file}`);
  }
  const source = readFileSync(path, 'utf8');
  const at = source.indexOf(m.find);
  if (at < 0) fail(`${m.name}: the find text is not in ${m.file} (the code changed: update scripts/mutations/)`);
  if (source.indexOf(m.find, at + 1) >= 0) fail(`${m.name}: the find text occurs more than once in ${m.file}`);
  return source.slice(0, at) + m.replace + source.slice(at + m.find.length);
}

/** The project's options, as ES modules (a file transpiled alone has no package.json to say so). */
function compilerOptions(dir) {
  const config = ts.readConfigFile(join(dir, 'tsconfig.json'), ts.sys.readFile);
  const options = ts.parseJsonConfigFileContent(config.config, ts.sys, dir).options;
  const { rootDir: _r, outDir: _o, ...rest } = options;
  return { ...rest, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler, sourceMap: false };
}

const withoutMapLine = (js) => js.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n').trimEnd();

function transpile(m, text, options) {
  const out = ts.transpileModule(text, { compilerOptions: options, fileName: m.file, reportDiagnostics: true });
  const errors = out.diagnostics?.filter((d) => d.category === ts.DiagnosticCategory.Error) ?? [];
  if (errors.length > 0) {
    const why = ts.flattenDiagnosticMessageText(errors[0].messageText, ' ');
    fail(`${m.name}: ${m.file} does not parse (mutated or not): ${why}`);
  }
  return out.outputText;
}

function prepare() {
  const dir = mkdtempSync(join(tmpdir(), 'veil-mutation-'));
  cpSync(join(root, 'src'), join(dir, 'src'), { recursive: true });
  for (const name of COPIED) cpSync(join(root, name), join(dir, name), { recursive: true });
  for (const name of LINKED) if (existsSync(join(root, name))) symlinkSync(join(root, name), join(dir, name));
  return dir;
}

function run(command, args, cwd, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid, 'SIGKILL'); // the whole group: test files may have started servers
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

/** The innermost failing tests of a TAP report: a parent's line follows its subtests', less indented. */
function failures(tap) {
  const out = [];
  let previousIndent = -1;
  for (const line of tap.split('\n')) {
    const hit = /^(\s*)(not )?ok \d+ - (.*)$/.exec(line);
    if (!hit) continue;
    const indent = hit[1].length;
    if (hit[2] && indent >= previousIndent) out.push(hit[3].trim());
    previousIndent = indent;
  }
  return [...new Set(out)];
}

function testRun(dir, tests, timeoutMs = TEST_TIMEOUT_MS) {
  // --test-force-exit: a mutation that leaves a thread or a handle alive fails its test, not the clock.
  const args = ['--test', '--test-force-exit', '--test-reporter=tap', '--test-concurrency=2', ...tests];
  return run(process.execPath, args, dir, timeoutMs);
}

const seconds = (since) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** The copy built once, and the listed tests passing there unmutated (else a failure would prove nothing). */
async function build(dir, tests) {
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  const built = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], dir, 300_000);
  if (built.code !== 0) fail(`the unmutated tree does not build:\n${built.output}`);
  for (const t of tests) {
    if (!existsSync(join(dir, t))) fail(`no compiled test ${t} (give paths like dist/cas/x.test.js)`);
  }
  const baseline = await testRun(dir, tests, BASELINE_TIMEOUT_MS);
  if (baseline.timedOut) fail(`the tests did not finish unmutated in ${BASELINE_TIMEOUT_MS / 1000} s`);
  if (baseline.code !== 0) {
    fail(`the tests fail without any mutation, so they prove nothing:\n${failures(baseline.output).join('\n')}`);
  }
}

/** Runs one mutation's tests with its compiled file replaced; true when they all still pass. */
async function survives(dir, m, js, options) {
  const compiled = join(dir, 'dist', relative('src', m.file).replace(/\.ts$/, '.js'));
  const original = readFileSync(compiled);
  // The file transpiled alone stands in for tsc's: unmutated, the two must be the same program.
  const plain = transpile(m, readFileSync(join(root, m.file), 'utf8'), options);
  if (withoutMapLine(plain) !== withoutMapLine(original.toString('utf8'))) {
    fail(`${m.name}: ${m.file} transpiled alone differs from tsc's output`);
  }
  writeFileSync(compiled, js);
  const t0 = Date.now();
  try {
    const result = await testRun(dir, m.tests);
    if (result.code === 0) {
      console.log(`SURVIVED ${m.name} (${seconds(t0)}): ${m.rule ?? ''}`);
      return true;
    }
    const caught = result.timedOut ? ['(timed out)'] : failures(result.output);
    const more = caught.length > 3 ? ` (+${caught.length - 3})` : '';
    console.log(`killed   ${m.name} (${seconds(t0)}) by: ${caught.slice(0, 3).join(' | ')}${more}`);
    return false;
  } finally {
    writeFileSync(compiled, original);
  }
}

async function main() {
  const started = Date.now();
  const mutations = loadMutations(process.argv.slice(2));
  if (mutations.length === 0) fail('no mutation matches');
  const options = compilerOptions(root);
  const prepared = mutations.map((m) => ({ m, js: transpile(m, mutatedSource(m), options) }));
  const dir = prepare();
  try {
    await build(dir, [...new Set(mutations.flatMap((m) => m.tests))]);
    console.log(`built and ran the tests unmutated in ${seconds(started)}`);
    const survivors = [];
    for (const { m, js } of prepared) if (await survives(dir, m, js, options)) survivors.push(m);
    console.log(`\n${mutations.length - survivors.length}/${mutations.length} mutations killed in ${seconds(started)}`);
    if (survivors.length > 0) {
      console.log('survivors (rules no listed test protects):');
      for (const m of survivors) console.log(`  ${m.name}: ${m.file}`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  if (!(err instanceof MutationSetupError)) throw err;
  console.error(`mutation: ${err.message}`);
  process.exitCode = 2;
}
