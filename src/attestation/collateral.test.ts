import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collateralProvider } from './collateral.js';
import type { IntelCollateral, IntelCollateralRequest } from './types.js';

const req: IntelCollateralRequest = { tee: 'tdx', fmspc: '90c06f000000', ca: 'platform' };
const answer = { tcbInfo: { body: '{}', signature: '' } } as unknown as IntelCollateral;

describe('collateral provider', () => {
  it('asks its sources in order and takes the first answer', async () => {
    const asked: string[] = [];
    const provider = collateralProvider({
      intel: [
        async () => {
          asked.push('dir');
          return undefined;
        },
        async () => {
          asked.push('pcs');
          return answer;
        },
        async () => {
          asked.push('never');
          return answer;
        },
      ],
    });
    assert.equal(await provider.intel(req), answer);
    assert.deepEqual(asked, ['dir', 'pcs']);
  });

  it('reuses an answer for at most its maximum age', async () => {
    let clock = 0;
    let fetches = 0;
    const provider = collateralProvider({
      intel: [
        async () => {
          fetches++;
          return answer;
        },
      ],
      maxAgeMs: 1000,
      now: () => clock,
    });
    await provider.intel(req);
    await provider.intel({ ...req, fmspc: req.fmspc.toUpperCase() });
    assert.equal(fetches, 1);
    clock = 1000;
    await provider.intel(req);
    assert.equal(fetches, 2);
    await provider.intel({ ...req, ca: 'processor' });
    assert.equal(fetches, 3);
  });

  it('serves the last good answer when a refresh fails or comes back empty', async () => {
    let clock = 0;
    let down = false;
    const provider = collateralProvider({
      intel: [
        async () => {
          if (down) throw new Error('PCS down');
          return answer;
        },
      ],
      maxAgeMs: 1000,
      now: () => clock,
    });
    assert.equal(await provider.intel(req), answer);
    down = true;
    clock = 5000;
    assert.equal(await provider.intel(req), answer);
    await assert.rejects(provider.intel({ ...req, fmspc: 'ffffffffffff' }), /PCS down/, 'nothing to fall back on');
  });

  it('does not keep failures or empty answers', async () => {
    let calls = 0;
    const provider = collateralProvider({
      intel: [
        async () => {
          calls++;
          if (calls === 1) throw new Error('PCS down');
          return calls === 2 ? undefined : answer;
        },
      ],
    });
    await assert.rejects(provider.intel(req), /PCS down/);
    assert.equal(await provider.intel(req), undefined);
    assert.equal(await provider.intel(req), answer);
    assert.equal(await provider.intel(req), answer);
    assert.equal(calls, 3);
  });

  it('is bounded', async () => {
    let fetches = 0;
    const provider = collateralProvider({
      intel: [
        async () => {
          fetches++;
          return answer;
        },
      ],
      maxEntries: 2,
    });
    for (const fmspc of ['a', 'b', 'c', 'a']) await provider.intel({ ...req, fmspc });
    assert.equal(fetches, 4);
  });
});
