import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { descendants, listeningPorts } from './procfs.js';

describe('listeningPorts', () => {
  it('finds the port a grandchild listens on, and none before it listens', async () => {
    // sh → python3: the listener is a descendant, as a program under veil run is.
    const script =
      'import socket,time; time.sleep(0.3); s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)';
    const child = spawn('sh', ['-c', `/usr/bin/python3 -c '${script}'; true`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(listeningPorts(child.pid!), []);
      const port = Number(
        await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))),
      );
      assert.ok(descendants(child.pid!).length >= 2);
      assert.deepEqual(listeningPorts(child.pid!), [port]);
    } finally {
      for (const pid of descendants(child.pid!).reverse()) process.kill(pid, 'SIGKILL');
    }
  });
});
