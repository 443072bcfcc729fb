import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSession, substituteVariables } from './index.js';
import { countYamlNodes, SESSION_LIMITS } from './limits.js';
import { policyError } from './test-errors.js';

const list = (n: number, item: (i: number) => string) => Array.from({ length: n }, (_, i) => item(i)).join('\n');
const secrets = (n: number, item = (i: number) => `  - {name: s${i}, kind: ascii}`) => `secrets:\n${list(n, item)}\n`;
const rsaKey = (i: number) => `  - {name: k${i}, kind: private-key, key_type: RSA-${i % 2 ? 2048 : 3072}}`;
const rsa = (n: number) => secrets(n, rsaKey);
const services = (n: number) => `services:\n${list(n, (i) => `  - {name: svc${i}}`)}\n`;
const paths = (n: number) => Array.from({ length: n }, (_, j) => `/f${j}`).join(', ');
const images = (n: number, files = 0) =>
  `images:\n${list(n, (i) => `  - name: img${i}\n    injection_files: [${paths(i === 0 ? files : 0)}]`)}\n`;

describe('session limits (SESSION_LIMITS)', () => {
  const cases: Array<[keyof typeof SESSION_LIMITS, (n: number) => string, string]> = [
    ['secrets', (n) => secrets(n), 'secrets'],
    ['rsaKeys', rsa, 'RSA keys'],
    ['services', services, 'services'],
    ['images', (n) => images(n), 'images'],
    ['injectionFiles', (n) => images(2, n), 'injection files'],
  ];
  for (const [limit, make, what] of cases) {
    const max = SESSION_LIMITS[limit];
    it(`${limit}: ${max} are accepted, ${max + 1} refused naming the limit, its value and the count`, () => {
      assert.doesNotThrow(() => parseSession(`name: x\n${make(max)}`));
      const err = policyError(`name: x\n${make(max + 1)}`);
      assert.equal(err.code, 'POLICY_LIMIT');
      assert.equal(err.issues.length, 1);
      assert.match(err.issues[0]!.message, new RegExp(`^${max + 1} ${what}.* limit ${limit} = ${max}`));
      assert.match(err.hint!, /split the session/);
    });
  }

  it('reports every limit exceeded at once, before any cross reference is looked at', () => {
    const dangling = secrets(SESSION_LIMITS.secrets + 1, (i) => `  - {name: c${i}, kind: x509, private_key: nowhere}`);
    const err = policyError(`name: x\n${dangling}${services(SESSION_LIMITS.services + 1)}`);
    assert.equal(err.code, 'POLICY_LIMIT');
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['secrets', 'services'],
    );
    assert.equal(err.issues[0]!.line, 2, 'small sessions get a line');
  });

  it('yamlNodes: a session of exactly 20,000 YAML nodes is accepted, one over refused before its shape', () => {
    assert.equal(countYamlNodes({ a: [1, 'x'], b: null }), 7, 'a map, its 2 keys, a list, 3 scalars');
    assert.equal(
      countYamlNodes(
        Array.from({ length: 50 }, () => [1]),
        10,
      ),
      11,
      'counting stops past the limit',
    );
    // 10 nodes around the environment (root map, name, services, the service, its keys), 2 per entry.
    const env = (n: number) =>
      `name: x\nservices:\n  - name: s\n    environment:\n${list(n, (i) => `      V${i}: v`)}\n`;
    const entries = (SESSION_LIMITS.yamlNodes - 10) / 2;
    assert.doesNotThrow(() => parseSession(env(entries)));
    const err = policyError(`${env(entries + 1)}    bad_field: 1\n`);
    assert.equal(err.code, 'POLICY_LIMIT');
    assert.deepEqual(
      err.issues.map((i) => i.message),
      [`more than 20000 YAML nodes (maps, lists, keys and scalars), the limit yamlNodes = 20000`],
      'reported alone: shape validation did not run',
    );
  });

  it('lets the seed policies stay well within every limit', () => {
    const vars = { FLASK_SESSION: 'f', REDIS_SESSION: 'r', MRENCLAVE: 'a'.repeat(64), SCONE_FSPF_KEY: 'b'.repeat(64) };
    Object.assign(vars, { SCONE_FSPF_TAG: 'c'.repeat(32) });
    for (const which of ['flask', 'redis']) {
      const file = fileURLToPath(new URL(`../../examples/flask-redis/policies/${which}-session.yaml`, import.meta.url));
      const session = parseSession(substituteVariables(readFileSync(file, 'utf8'), vars));
      const files = (session.images ?? []).reduce((n, i) => n + (i.injection_files?.length ?? 0), 0);
      assert.ok((session.secrets?.length ?? 0) * 8 <= SESSION_LIMITS.secrets, which);
      assert.ok((session.services?.length ?? 0) * 8 <= SESSION_LIMITS.services, which);
      assert.ok(files * 8 <= SESSION_LIMITS.injectionFiles, which);
      assert.ok(countYamlNodes(session) * 8 <= SESSION_LIMITS.yamlNodes, which);
    }
  });
});
