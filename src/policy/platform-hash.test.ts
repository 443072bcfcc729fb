import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWrittenSession, sessionHash } from './index.js';
import { policyError } from './test-errors.js';

const CREATOR = 'c'.repeat(64);
const session = (platform: string, other = 'x') =>
  [
    'name: s',
    'version: "0.3"',
    'services:',
    `  - {name: api, mrenclaves: ["${'a'.repeat(64)}"], platforms: ["$$SCONE::plat$$"], command: run}`,
    'secrets:',
    `  - {name: plat, kind: ascii, value: "${platform}"}`,
    `  - {name: other, kind: ascii, value: "${other}"}`,
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');
const hashOf = (text: string) => sessionHash(parseWrittenSession(text), CREATOR);

describe('a session_hash pin fixes the platform IDs that secrets give', () => {
  it('counts the values of the secrets platforms name, and only those', () => {
    const good = hashOf(session('1'.repeat(64)));
    assert.notEqual(hashOf(session('e'.repeat(64))), good, 'another platform ID, another hash');
    assert.equal(hashOf(session('1'.repeat(64), 'y')), good, 'a secret value elsewhere still counts only as present');
  });

  it('refuses a platform ID that is generated or imported (no pin could fix it)', () => {
    const generated = session('1'.repeat(64)).replace(`, value: "${'1'.repeat(64)}"`, '');
    assert.match(policyError(generated).message, /platform ID must be written in the session/);
    const imported = session('1'.repeat(64)).replace(
      `kind: ascii, value: "${'1'.repeat(64)}"`,
      'kind: ascii, import: {session: other, secret: id}',
    );
    assert.match(policyError(imported).message, /platform ID must be written in the session/);
  });
});
