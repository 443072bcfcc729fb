import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyError, parseSession } from './index.js';
import { SESSION_LIMITS } from './limits.js';
import { crossReferences } from './references.js';
import type { Session } from './schema.js';
import { MAX_DEPTH, parseYaml } from './yaml-source.js';

/**
 * Adversarial inputs that once took seconds (issue #10). Each is timed in CPU time against a benign input of
 * the same size parsed in the same test, with a generous factor: the tests fail when a quadratic algorithm
 * comes back, not when the machine is slow.
 */
const MiB = 1024 * 1024;

function cpuMs(run: () => unknown): number {
  const start = process.cpuUsage();
  try {
    run();
  } catch {
    // the outcome is asserted apart; only the time counts here
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** The fastest of three runs: the least disturbed by other work on the machine. */
const best = (run: () => unknown) => Math.min(cpuMs(run), cpuMs(run), cpuMs(run));

function failure(run: () => unknown): PolicyError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err));
    return err;
  }
  assert.fail('expected a PolicyError');
}

function assertLinear(label: string, adversarial: () => unknown, benign: () => unknown, factor: number): void {
  const base = best(benign);
  const took = best(adversarial);
  assert.ok(took <= factor * base + 20, timing(label, took, base));
}

function timing(label: string, took: number, base: number): string {
  return `${label}: ${took.toFixed(1)} ms of CPU, benign input of the same size ${base.toFixed(1)} ms`;
}

const padTo = (head: string, line: (i: number) => string, bytes: number) => {
  const parts = [head];
  let size = head.length;
  for (let i = 0; size < bytes; i++) size += parts[parts.push(line(i)) - 1]!.length;
  return parts.join('');
};

describe('issuer cycles are found in linear time', () => {
  const N = 16_000;
  const session = (issuer: (i: number) => string | undefined) => {
    const ca = (i: number) => ({ name: `c${i}`, kind: 'x509-ca', private_key: 'k', issuer: issuer(i) });
    const secrets = [{ name: 'k', kind: 'private-key' }, ...Array.from({ length: N }, (_, i) => ca(i))];
    return { name: 'x', secrets } as unknown as Session;
  };
  const chain = session((i) => (i === 0 ? undefined : `c${i - 1}`));
  const loop = session((i) => `c${(i + 1) % N}`);
  const flat = session(() => undefined);

  it(`a chain of ${N} CAs passes, a cycle of ${N} is reported once per member, shortened`, () => {
    assert.deepEqual(crossReferences(chain), []);
    const findings = crossReferences(loop);
    assert.equal(findings.length, N);
    const shortened = `issuer cycle: c0 → c1 → c2 → … (${N} certificates) → c${N - 1} → c0`;
    assert.equal(findings[0]!.message, shortened);
  });

  it('costs about what the same CAs without issuers cost', () => {
    assertLinear(
      'chain',
      () => crossReferences(chain),
      () => crossReferences(flat),
      10,
    );
    assertLinear(
      'cycle',
      () => crossReferences(loop),
      () => crossReferences(flat),
      10,
    );
  });

  it('refuses such a session at upload by the secrets limit, before any reference is followed', () => {
    const ca = (i: number) => `  - {name: c${i + 1}, kind: x509-ca, private_key: k, issuer: c${i}}\n`;
    // ≈ 1,600 secrets: past the secrets limit, within yamlNodes (a MiB of them is refused by that, right away).
    const text = padTo('name: x\nsecrets:\n  - {name: c0, kind: x509-ca, private_key: c0}\n', ca, 100_000);
    const err = failure(() => parseSession(text));
    assert.equal(err.code, 'POLICY_LIMIT');
    assert.match(err.message, new RegExp(`secrets = ${SESSION_LIMITS.secrets}`));
  });
});

describe('nesting is refused while parsing, with the same error as before', () => {
  const deep = (err: PolicyError) =>
    err.code === 'POLICY_TOO_COMPLEX' && err.issues[0]!.message === `nesting deeper than ${MAX_DEPTH} levels`;
  const flowBenign = padTo('name: x\ndata:\n  a: [', () => '[1], ', MiB) + '[1]]\n';
  const blockBenign = padTo('name: x\ndata:\n  a:\n', (i) => `    - {k: ${i}}\n`, MiB);

  it('1 MiB of `[`', () => {
    const text = '['.repeat(MiB);
    assert.ok(deep(failure(() => parseYaml(text, 's.yaml'))));
    assertLinear(
      '1 MiB of [',
      () => parseYaml(text, 's.yaml'),
      () => parseYaml(flowBenign, 's.yaml'),
      2,
    );
  });

  it('1 MiB of `- ` (compact block sequences; `yaml` ran out of memory on it) and deeply indented maps', () => {
    const compact = `${'- '.repeat(MiB / 2)}x\n`;
    const indented = padTo('name: x\ndata:\n', (i) => `${' '.repeat(i + 2)}a${i}:\n`, MiB);
    for (const text of [compact, indented]) {
      assert.ok(deep(failure(() => parseYaml(text, 's.yaml'))));
      assertLinear(
        'deep block nesting',
        () => parseYaml(text, 's.yaml'),
        () => parseYaml(blockBenign, 's.yaml'),
        2,
      );
    }
  });

  it('on the `yaml` path too (anchors, or a syntax error js-yaml stops at first)', () => {
    const size = SESSION_LIMITS.fullParseBytes - 100;
    const anchoredFlow = `name: x\nversion: &v "1"\ndata: {a: ${'['.repeat(size - 60)}`;
    const anchoredBlock = `name: x\nversion: &v "1"\ndata:\n  a:\n${'  - '.repeat((size - 60) / 4)}x\n`;
    const syntaxFirst = `a: b: c\nx: ${'['.repeat(size - 20)}`;
    const benign = padTo('name: x\nversion: &v "1"\ndata:\n  a: [', () => '[1], ', size) + '[1]]\n';
    const base = best(() => parseYaml(benign, 's.yaml'));
    for (const text of [anchoredFlow, anchoredBlock, syntaxFirst]) {
      const err = failure(() => parseYaml(text, 's.yaml'));
      assert.ok(deep(err), err.message);
      assert.ok(err.issues[0]!.line !== undefined, 'located');
      const took = best(() => parseYaml(text, 's.yaml'));
      assert.ok(took <= base / 2 + 5, timing('yaml path', took, base));
    }
  });

  it(`accepts exactly ${MAX_DEPTH} levels and refuses ${MAX_DEPTH + 1}, on both paths, flow and block`, () => {
    // `levels` is the depth of the deepest node: the root map is 0, `secrets` 1, the secret 2, a config-fragment's
    // value 3, and its key `a` holds the rest (from depth 4).
    const fragment = 'secrets:\n  - name: f\n    kind: config-fragment\n    value:\n      a:';
    const head = (anchor: boolean) => `name: x\n${anchor ? 'version: &v "1"\n' : ''}${fragment}`;
    const flow = (levels: number, anchor: boolean) =>
      `${head(anchor)} ${'['.repeat(levels - 3)}${']'.repeat(levels - 3)}\n`;
    const item = (i: number, levels: number) => `${' '.repeat(6 + 2 * i)}- ${i === levels - 5 ? '[]' : ''}`;
    const block = (levels: number, anchor: boolean) =>
      `${head(anchor)}\n${Array.from({ length: levels - 4 }, (_, i) => item(i, levels)).join('\n')}\n`;
    for (const make of [flow, block]) {
      for (const anchor of [false, true]) {
        assert.doesNotThrow(() => parseSession(make(MAX_DEPTH, anchor)), `${make.name} ${anchor}`);
        assert.ok(deep(failure(() => parseSession(make(MAX_DEPTH + 1, anchor)))), `${make.name} ${anchor}`);
      }
    }
  });
});

describe('the `yaml` path stays small and linear', () => {
  const flatMap = (bytes: number) => padTo('name: x\nversion: &v "1"\ndata:\n', (i) => `  k${i}: v\n`, bytes);

  it('finds duplicate keys without comparing every key with every other', () => {
    const text = flatMap(SESSION_LIMITS.fullParseBytes - 100);
    const err = failure(() => parseYaml(`${text}  k0: again\n`, 's.yaml'));
    assert.equal(err.code, 'POLICY_YAML_SYNTAX');
    assert.match(err.message, /Map keys must be unique/);
    const list = padTo('name: x\nversion: &v "1"\ndata:\n  l:\n', (i) => `    - v${i}\n`, text.length);
    assertLinear(
      'flat map',
      () => parseYaml(text, 's.yaml'),
      () => parseYaml(list, 's.yaml'),
      4,
    );
  });

  it(`refuses anchors above ${SESSION_LIMITS.fullParseBytes} bytes, and reports syntax errors there by js-yaml`, () => {
    const big = flatMap(SESSION_LIMITS.fullParseBytes + 1);
    const anchors = failure(() => parseYaml(big, 's.yaml'));
    assert.equal(anchors.code, 'POLICY_TOO_COMPLEX');
    assert.match(anchors.message, /anchors and aliases are accepted in sessions up to 65536 bytes/);
    const syntax = failure(() => parseYaml(`${big.replace('&v ', '')}bad: [\n`, 's.yaml'));
    assert.equal(syntax.code, 'POLICY_YAML_SYNTAX');
    assert.ok(syntax.issues[0]!.line! > 1000, syntax.message);
  });
});
