import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freeLoopbackAddresses } from './addresses.js';
import { listeningAddresses } from './procfs.js';

describe('freeLoopbackAddresses', () => {
  it('gives distinct addresses in 127.0.0.0/8, outside 127.0.0.0/24', () => {
    const addresses = freeLoopbackAddresses(50, new Set());
    assert.equal(new Set(addresses).size, 50);
    for (const a of addresses) {
      const [first, second, , last] = a.split('.').map(Number) as [number, number, number, number];
      assert.ok(first === 127 && second >= 1 && second <= 255 && last >= 1 && last <= 254, a);
    }
  });

  it('skips an address something listens on, and one it already gave', () => {
    const picks = ['127.9.9.9', '127.9.9.9', '127.1.2.3', '127.4.5.6'];
    const out = freeLoopbackAddresses(2, new Set(['127.1.2.3']), () => picks.shift()!);
    assert.deepEqual(out, ['127.9.9.9', '127.4.5.6']);
  });

  it('gives up with a hint rather than looping when nothing is free', () => {
    const always = () => '127.1.1.1';
    const expected = { code: 'MESH_ADDRESS', message: /1000 random tries/ };
    assert.throws(() => freeLoopbackAddresses(1, new Set(['127.1.1.1']), always), expected);
  });
});

describe('listeningAddresses', () => {
  it('reads /proc/net/tcp (little-endian hex) and lists only listening sockets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-tcp-'));
    try {
      const table = join(dir, 'tcp');
      writeFileSync(
        table,
        [
          '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
          '   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1',
          '   1: 0302017F:18EB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 102 1',
          '   2: 5609057F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1',
          '',
        ].join('\n'),
      );
      assert.deepEqual([...listeningAddresses(table)], ['127.0.0.1', '127.5.9.86']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sees a real listener on a random loopback address', async () => {
    const [address] = freeLoopbackAddresses(1);
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, address, r));
    try {
      const picks = [address!, '127.200.0.1'];
      assert.deepEqual(
        freeLoopbackAddresses(1, listeningAddresses(), () => picks.shift()!),
        ['127.200.0.1'],
      );
    } finally {
      server.close();
    }
  });
});
