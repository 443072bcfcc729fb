import assert from 'node:assert/strict';
import { PolicyError } from './errors.js';
import { parseSession } from './parse.js';

/** For the policy tests: the PolicyError parsing `text` (as file s.yaml) throws; fails when it parses. */
export function policyError(text: string): PolicyError {
  try {
    parseSession(text, { file: 's.yaml' });
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err));
    return err;
  }
  assert.fail('expected a PolicyError');
}
