import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { parseWrittenSession, resolveSession } from './index.js';
import { SESSION_LIMITS } from './limits.js';

const hex = (i: number) => `a${i.toString(16).padStart(63, '0')}`;

/** The reviewed attack: one fragment of 9,000 strings, named 16 times in each of 64 services' platforms. */
function manyPlacements(): string {
  const refs = Array.from({ length: 16 }, () => '$$SCONE::f$$').join(', ');
  const services = Array.from({ length: 64 }, (_, i) => `  - {name: s${i}, platforms: [${refs}]}`);
  const values = Array.from({ length: 9000 }, (_, i) => hex(i)).join(', ');
  return [
    'name: a',
    'services:',
    ...services,
    `secrets: [{name: f, kind: config-fragment, value: [${values}]}]`,
    '',
  ].join('\n');
}

describe('config-fragments within the YAML node limit', () => {
  it('are refused before the filled session outgrows the limit, not after copying every placement', (t) => {
    const written = parseWrittenSession(manyPlacements());
    const copies = t.mock.method(globalThis, 'structuredClone');
    assert.throws(
      () => resolveSession(written, { unknownImports: 'refuse' }),
      /with its config-fragments filled in, the session has more than 20000 YAML nodes/,
    );
    // 9,000 nodes a copy: the budget of 20,000 pays for two copies at most, not for 1,024.
    assert.ok(copies.mock.callCount() <= Math.ceil(SESSION_LIMITS.yamlNodes / 9000));
    mock.restoreAll();
  });

  it('still fill a fragment as often as the limit allows', () => {
    const refs = Array.from({ length: 16 }, () => '$$SCONE::f$$').join(', ');
    const services = Array.from({ length: 64 }, (_, i) => `  - {name: s${i}, platforms: [${refs}]}`);
    const text = [
      'name: a',
      'services:',
      ...services,
      `secrets: [{name: f, kind: config-fragment, value: [${hex(1)}]}]`,
    ].join('\n');
    const session = resolveSession(parseWrittenSession(text), { unknownImports: 'refuse' });
    assert.equal(session.services?.[63]?.platforms?.length, 16);
  });
});
