import assert from 'node:assert/strict';
import { AttestationError } from './errors.js';

/** For assert.rejects/throws in the attestation tests: an AttestationError with code `c` whose message names `parts`. */
export const code =
  (c: string, ...parts: string[]) =>
  (e: unknown) => {
    assert.ok(e instanceof AttestationError, `not an AttestationError: ${String(e)}`);
    assert.equal(e.code, c, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `'${e.message}' does not mention '${p}'`);
    return true;
  };
