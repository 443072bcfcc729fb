import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { operationsLines } from './operations.js';

describe('what veil up prints about operating its CAS', () => {
  it('names the metrics URL, the probes and how to export the audit log', () => {
    const [metrics, audit] = operationsLines('https://127.0.0.1:41234');
    assert.match(metrics!, /metrics: https:\/\/127\.0\.0\.1:41234\/metrics /);
    assert.match(metrics!, /\/healthz, https:\/\/127\.0\.0\.1:41234\/readyz/);
    assert.equal(
      audit,
      '[veil] audit log: veil audit export --cas https://127.0.0.1:41234 --out audit.jsonl ' +
        '(or GET https://127.0.0.1:41234/v1/audit)',
    );
  });
});
