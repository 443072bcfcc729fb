import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import type { RuntimeConfig } from './attest.js';
import type { Running } from './launch.js';
import { RENEW_MARGIN_MS, type Timers } from './renewal-rules.js';
import { Supervisor } from './renewal.js';

/** The supervisor on a fake clock, with fake programs and a scripted CAS: every decision, no waiting. */
const GRACE = 5_000;

function certPem(notAfter: number): string {
  const key = generatePrivateKey('P-256');
  const der = issueCertificate({
    subjectKey: key,
    commonName: 'svc',
    isCa: false,
    notBefore: new Date(0),
    notAfter: new Date(notAfter),
  });
  return pemEncode('CERTIFICATE', der);
}

function config(n: number, extra: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return {
    command: ['server'],
    environment: {},
    pwd: '/',
    injectionFiles: [{ path: '/tls/cert.pem', mode: 0o644, content: Buffer.from(`cert ${n}`).toString('base64') }],
    renew_at: n * 10_000,
    ...extra,
  };
}

interface FakeProgram extends Running {
  signals: NodeJS.Signals[];
  exit(code: number): void;
}

function fakeProgram(pid: number, ignoresTerm = false, started: Promise<void> = Promise.resolve()): FakeProgram {
  let exit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const signals: NodeJS.Signals[] = [];
  return {
    pid,
    exited,
    started,
    secure: true,
    signals,
    exit,
    lingering: () => false,
    kill: (signal) => {
      signals.push(signal);
      if (signal === 'SIGKILL' || (signal === 'SIGTERM' && !ignoresTerm)) exit(128 + (signal === 'SIGKILL' ? 9 : 15));
    },
  };
}

interface HarnessOptions {
  ignoresTerm?: boolean;
  /** When the first program counts as running (the helper exec'd it); at once unless given. */
  started?: Promise<void>;
}

function harness(first: RuntimeConfig, answers: Array<RuntimeConfig | Error>, opts: HarnessOptions = {}) {
  let now = 0;
  const pending: Array<{ at: number; fn: () => void; id: number }> = [];
  let ids = 0;
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      pending.push({ at: now + ms, fn, id: ++ids });
      return ids;
    },
    clearTimeout: (id) => {
      const i = pending.findIndex((p) => p.id === id);
      if (i >= 0) pending.splice(i, 1);
    },
  };
  const programs: FakeProgram[] = [];
  const started: RuntimeConfig[] = [];
  const rewrites: RuntimeConfig['injectionFiles'][] = [];
  const log: string[] = [];
  let attests = 0;
  let rewriteFails = false;
  const supervisor = new Supervisor(first, {
    start: async (c) => {
      started.push(c);
      const p = fakeProgram(100 + programs.length, opts.ignoresTerm, programs.length ? undefined : opts.started);
      programs.push(p);
      return p;
    },
    reattest: async () => {
      const answer = answers[attests++];
      if (!answer) throw new Error('no more answers scripted');
      if (answer instanceof Error) throw answer;
      return answer;
    },
    rewrite: (_running, files) => {
      if (rewriteFails) throw new Error('not a tmpfs');
      rewrites.push(files);
    },
    timers,
    log: (line) => log.push(line),
    graceMs: GRACE,
  });
  const flush = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  /** Moves the clock to `to`, firing due timers in order and letting their promises settle. */
  const until = async (to: number) => {
    for (;;) {
      pending.sort((a, b) => a.at - b.at);
      const next = pending[0];
      if (!next || next.at > to) break;
      pending.shift();
      now = next.at;
      next.fn();
      await flush();
    }
    now = to;
  };
  let code: number | undefined;
  const done = supervisor.run().then((c) => (code = c));
  return {
    supervisor,
    programs,
    started,
    rewrites,
    log,
    until,
    flush,
    done,
    pending,
    attests: () => attests,
    code: () => code,
    failRewrites: () => (rewriteFails = true),
  };
}

describe('Supervisor: renewal driven by the clock', () => {
  it('attests again at renew_at + the margin, not before, and rewrites the files in place', async () => {
    const h = harness(config(1), [config(2)]);
    await h.flush();
    await h.until(10_000 + RENEW_MARGIN_MS - 1);
    assert.equal(h.attests(), 0);
    await h.until(10_000 + RENEW_MARGIN_MS);
    assert.equal(h.attests(), 1);
    assert.deepEqual(h.rewrites, [config(2).injectionFiles]);
    assert.equal(h.started.length, 1, 'no restart');
    assert.deepEqual(h.programs[0]!.signals, []);
    assert.ok(
      h.log.some((l) => l.includes('1970-01-01T00:00:21.000Z')),
      h.log.join('\n'),
    ); // the next renewal
  });

  it("rewrites only once the program runs (the helper has exec'd it, its mounts are in place)", async () => {
    let run!: () => void;
    const h = harness(config(1), [config(2)], { started: new Promise((r) => (run = r)) });
    await h.flush();
    await h.until(11_000);
    assert.equal(h.attests(), 1);
    assert.deepEqual(h.rewrites, []);
    run();
    await h.flush();
    assert.deepEqual(h.rewrites, [config(2).injectionFiles]);
  });

  it('renewal: restart stops the program (SIGTERM) and starts it with the new configuration', async () => {
    const h = harness(config(1, { renewal: 'restart' }), [config(2, { renewal: 'restart' })]);
    await h.flush();
    await h.until(11_000);
    assert.deepEqual(h.programs[0]!.signals, ['SIGTERM']);
    assert.equal(h.started.length, 2);
    assert.deepEqual(h.started[1]!.injectionFiles, config(2).injectionFiles);
    assert.deepEqual(h.rewrites, []);
    assert.equal(h.code(), undefined, 'a restart is not the end of veil run');
    h.programs[1]!.exit(3);
    await h.done;
    assert.equal(h.code(), 3);
    assert.equal(h.pending.length, 0, 'no renewal after the program ended');
  });

  it('a program that ignores SIGTERM gets SIGKILL after the grace period, then restarts', async () => {
    const h = harness(config(1, { renewal: 'restart' }), [config(2, { renewal: 'restart' })], { ignoresTerm: true });
    await h.flush();
    await h.until(11_000 + GRACE - 1);
    assert.deepEqual(h.programs[0]!.signals, ['SIGTERM']);
    assert.equal(h.started.length, 1);
    await h.until(11_000 + GRACE);
    assert.deepEqual(h.programs[0]!.signals, ['SIGTERM', 'SIGKILL']);
    assert.equal(h.started.length, 2);
  });

  it('rewrite mode, but the command changed: restart, never a stale command', async () => {
    const h = harness(config(1), [config(2, { command: ['server', '--new'] })]);
    await h.flush();
    await h.until(11_000);
    assert.deepEqual(h.rewrites, []);
    assert.deepEqual(h.started[1]!.command, ['server', '--new']);
    assert.ok(
      h.log.some((l) => l.includes('the command changed')),
      h.log.join('\n'),
    );
  });

  it('a rewrite that fails restarts the program instead of keeping stale files', async () => {
    const h = harness(config(1), [config(2)]);
    h.failRewrites();
    await h.flush();
    await h.until(11_000);
    assert.equal(h.started.length, 2);
    assert.ok(h.log.some((l) => /cannot rewrite the injected files \(not a tmpfs\): restarting/.test(l)));
  });

  it('the same files again: nothing is rewritten or restarted', async () => {
    const h = harness(config(1), [{ ...config(1), renew_at: 30_000 }]);
    await h.flush();
    await h.until(11_000);
    assert.deepEqual(h.rewrites, []);
    assert.equal(h.started.length, 1);
  });

  it('without renew_at nothing is scheduled', async () => {
    const h = harness(config(1, { renew_at: undefined }), []);
    await h.flush();
    assert.equal(h.pending.length, 0);
    await h.until(10 ** 9);
    assert.equal(h.attests(), 0);
  });

  it('SIGTERM ends renewal: it goes to the program and no attestation follows', async () => {
    const h = harness(config(1), [config(2)]);
    await h.flush();
    h.supervisor.signal('SIGTERM');
    await h.done;
    await h.until(100_000);
    assert.equal(h.attests(), 0);
    assert.equal(h.code(), 128 + 15);
    assert.deepEqual(h.programs[0]!.signals, ['SIGTERM']);
  });

  it('other signals are passed on without ending renewal', async () => {
    const h = harness(config(1), [config(2)]);
    await h.flush();
    h.supervisor.signal('SIGUSR1');
    await h.until(11_000);
    assert.equal(h.attests(), 1);
    assert.deepEqual(h.programs[0]!.signals, ['SIGUSR1']);
  });
});

describe('Supervisor: a CAS that is away or refuses', () => {
  it('retries with backoff until expiry, then says loudly that the files are stale, and keeps trying', async () => {
    const expiry = 14_000;
    const first: RuntimeConfig = {
      ...config(1),
      injectionFiles: [
        { path: '/tls/cert.pem', mode: 0o644, content: Buffer.from(certPem(expiry)).toString('base64') },
      ],
    };
    const away = new Error('cannot reach the CAS at https://127.0.0.1:1 (ECONNREFUSED)');
    const h = harness(first, [away, away, away, away, { ...config(5), renew_at: 100_000 }]);
    await h.flush();
    const times: number[] = [];
    for (let t = 11_000; t <= 80_000; t += 100) {
      const before = h.attests();
      await h.until(t);
      if (h.attests() > before) times.push(t);
    }
    // 11 s; +1 s; +2 s would pass the expiry (14 s): at it; then every 30 s; the fifth answer renews.
    assert.deepEqual(times, [11_000, 12_000, 14_000, 44_000, 74_000]);
    assert.equal(h.log.filter((l) => l.includes('EXPIRED')).length, 1, h.log.join('\n'));
    assert.ok(h.log.some((l) => l.includes('renewal failed (cannot reach the CAS')));
    assert.deepEqual(h.rewrites, [config(5).injectionFiles]);
    assert.equal(h.started.length, 1, 'the program kept running');
  });

  it("an answer whose renew_at has passed (the CAS's clock behind) is retried, not scheduled in the past", async () => {
    const h = harness(config(1), [{ ...config(1), renew_at: 10_000 }, config(3)]);
    await h.flush();
    await h.until(11_000);
    assert.equal(h.attests(), 1);
    await h.until(12_000);
    assert.equal(h.attests(), 2);
    assert.ok(h.log.some((l) => /renew_at .* has passed/.test(l)));
    assert.deepEqual(h.rewrites, [config(3).injectionFiles]);
  });
});
