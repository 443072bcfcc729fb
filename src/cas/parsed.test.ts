import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PARSED_CACHE_BYTES, parsedCacheUse, sessionOf } from './parsed.js';
import type { SessionRecord } from './store/index.js';

const stored = (name: string, hash: string, padding: number): SessionRecord => ({
  name,
  hash,
  predecessor: null,
  text: `name: ${name}\n#${'x'.repeat(padding)}\n`,
  creator: 'PEM',
  createdAt: 1,
  secrets: {},
});

describe('the parse cache of stored sessions', () => {
  it('is bounded by bytes: large versions push the oldest out, and one over 1/16 of the budget is not kept', () => {
    const share = PARSED_CACHE_BYTES / 16;
    const huge = stored('huge', 'h1', share);
    assert.equal(sessionOf(huge).name, 'huge');
    assert.equal(parsedCacheUse().bytes, 0);
    for (let i = 0; i < 17; i++) assert.equal(sessionOf(stored(`big-${i}`, 'b1', share - 100)).name, `big-${i}`);
    const use = parsedCacheUse();
    assert.ok(use.bytes <= PARSED_CACHE_BYTES, String(use.bytes));
    assert.equal(use.entries, 16);
  });
});
