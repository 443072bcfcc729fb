import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadHostKey } from '../../runtime/host-key.js';
import { debugPlatforms } from './host.js';

describe('the platforms debug mode writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-platforms-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { VEIL_HOST_KEY: join(dir, 'host', 'host-key.pem') };

  it('are this host and the --platform IDs, once each', async () => {
    const me = (await loadHostKey(env.VEIL_HOST_KEY)).id;
    const other = 'ab'.repeat(32);
    assert.deepEqual(await debugPlatforms('debug', undefined, env), [me]);
    assert.deepEqual(await debugPlatforms('debug', [other, me, other], env), [me, other]);
  });

  it('are none in production, where --platform is refused, and never anything but host IDs', async () => {
    assert.deepEqual(await debugPlatforms('production', undefined, env), []);
    await assert.rejects(debugPlatforms('production', ['ab'.repeat(32)], env), /--platform needs --mode debug/);
    await assert.rejects(debugPlatforms('debug', ['not-a-host'], env), /is not a host ID/);
  });
});
