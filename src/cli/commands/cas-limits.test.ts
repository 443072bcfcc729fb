import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { limitsFromFlags, logLevelFlag, remoteCasFlags, workersFlag } from '../serve-flags.js';

describe('veil cas serve limit flags', () => {
  it('map to startCas limits, leaving unset ones to the defaults', () => {
    const parsed = limitsFromFlags({
      'headers-timeout': '5000',
      'max-connections-per-address': '8',
      'max-nonces': '10',
      'store-pool-size': '4',
    });
    assert.deepEqual(parsed, {
      limits: { headersTimeoutMs: 5000, maxConnectionsPerAddress: 8 },
      nonceLimits: { max: 10 },
      storeLimits: { poolSize: 4 },
    });
    assert.deepEqual(limitsFromFlags({}), { limits: {}, nonceLimits: {}, storeLimits: {} });
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

describe('veil cas serve --remote-cas', () => {
  it('reads HOST[:PORT]=CAS_KEY, and refuses anything else naming the flag', () => {
    const key = 'ab'.repeat(32);
    assert.deepEqual(remoteCasFlags([`cas1.example:8081=${key}`]), [{ url: 'cas1.example:8081', key }]);
    for (const bad of ['cas1.example', `cas1.example=${key.slice(1)}`, `https://a/b=${key}`]) {
      assert.throws(
        () => remoteCasFlags([bad]),
        (e: Error & { code?: string }) => e.code === 'CLI_USAGE' && e.message.includes('--remote-cas'),
        bad,
      );
    }
  });
});

describe('veil cas serve --log-level', () => {
  it("takes pino's levels and refuses anything else, naming the flag and the levels", () => {
    assert.equal(logLevelFlag('debug'), 'debug');
    for (const bad of ['verbose', 'DEBUG', '10', '']) {
      assert.throws(
        () => logLevelFlag(bad),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === 'CLI_USAGE' && e.message.includes('--log-level') && /trace, debug, info/.test(e.hint ?? ''),
        bad,
      );
    }
  });
});

describe('veil cas serve --workers', () => {
  it('is one process unless asked; auto is one per core; anything else is a usage error', () => {
    assert.equal(workersFlag(undefined, {}, 8), 1);
    assert.equal(workersFlag(undefined, { VEIL_CAS_WORKERS: '3' }, 8), 3);
    assert.equal(workersFlag('auto', {}, 8), 8);
    assert.equal(workersFlag('2', { VEIL_CAS_WORKERS: '5' }, 8), 2);
    assert.throws(() => workersFlag('0', {}, 8), /neither a number of processes/);
    assert.throws(() => workersFlag('two', {}, 8), /neither a number of processes/);
  });
});
