import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { RuntimeConfig } from './attest.js';
import { startProgram } from './launch.js';
import { openProgram } from './program.js';
import { realTimers } from './renewal-rules.js';
import { Supervisor } from './renewal.js';

/**
 * A restart ends the program's whole process group, not only its pid: a child it forked (here one that
 * even ignores SIGTERM) would otherwise keep the old secrets and ports. Real processes, real signals.
 */
const dir = mkdtempSync(join(tmpdir(), 'veil-group-'));
const seen: number[] = [];
after(() => {
  for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL'); // a failed run leaves nothing behind
  rmSync(dir, { recursive: true, force: true });
});

function config(n: number): RuntimeConfig {
  const pidFile = join(dir, `child-${n}`);
  // The child ignores SIGTERM: only the group's SIGKILL after the grace period ends it.
  const script = `(trap '' TERM; exec sleep 300) & echo $! > ${pidFile}.tmp && mv ${pidFile}.tmp ${pidFile}; wait`;
  return { command: ['sh', '-c', script], environment: {}, pwd: '/', injectionFiles: [], renew_at: Date.now() };
}

/** Gone: no such process, or a zombie waiting for init (it holds nothing any more). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** SIGKILL is delivered asynchronously: give the kernel a moment to end the process. */
async function goneSoon(pid: number): Promise<boolean> {
  for (let i = 0; i < 40 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
  return !alive(pid);
}

async function childOf(n: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    try {
      const pid = Number(readFileSync(join(dir, `child-${n}`), 'utf8').trim());
      seen.push(pid);
      return pid;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`program ${n} never wrote its child's pid`);
}

describe('the program runs in a process group of its own', () => {
  it("a restart ends the old program's children; a terminating signal ends the new ones", async () => {
    const opened = openProgram('sh', process.env['PATH'] ?? '/usr/bin:/bin');
    after(() => opened.close());
    let reattested = false;
    const supervisor = new Supervisor(config(1), {
      start: (c) => startProgram(c, opened.fd, { insecureNoNamespace: true }),
      reattest: async () => {
        reattested = true;
        return { ...config(2), renew_at: Date.now() + 3_600_000 };
      },
      rewrite: () => undefined,
      timers: realTimers,
      log: () => undefined,
      graceMs: 500,
    });
    const done = supervisor.run();
    const first = await childOf(1);
    assert.ok(alive(first));
    const second = await childOf(2);
    assert.ok(reattested);
    assert.ok(await goneSoon(first), "the old program's child outlived the restart");
    assert.ok(alive(second));
    supervisor.signal('SIGTERM');
    await done;
    assert.ok(await goneSoon(second), "the program's child outlived veil run's end");
    console.log(`# children ended: 2 of 2 (pids ${first}, ${second})`);
  });
});
