import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { limitsFromFlags } from './cas.js';

describe('veil cas serve limit flags', () => {
  it('map to startCas limits, leaving unset ones to the defaults', () => {
    const parsed = limitsFromFlags({
      'headers-timeout': '5000',
      'max-connections-per-address': '8',
      'max-nonces': '10',
    });
    assert.deepEqual(parsed, {
      limits: { headersTimeoutMs: 5000, maxConnectionsPerAddress: 8 },
      nonceLimits: { max: 10 },
    });
    assert.deepEqual(limitsFromFlags({}), { limits: {}, nonceLimits: {} });
  });

  it('refuse what is not a positive whole number, naming the flag', () => {
    for (const bad of ['0', '-1', '1.5', '10ms', '']) {
      assert.throws(
        () => limitsFromFlags({ 'idle-timeout': bad }),
        (e: Error) => e.message.includes('--idle-timeout'),
        bad,
      );
    }
  });
});
