import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import type { RuntimeConfig } from './attest.js';
import {
  MAX_BACKOFF_MS,
  MAX_TIMER_MS,
  backoff,
  callAt,
  certificateExpiry,
  renewalAction,
  type Timers,
} from './renewal-rules.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

const base: RuntimeConfig = {
  command: ['server', '--tls'],
  environment: { A: '1', B: '2' },
  pwd: '/app',
  injectionFiles: [
    { path: '/tls/cert.pem', mode: 0o644, content: b64('cert 1') },
    { path: '/tls/key.pem', mode: 0o600, content: b64('key 1') },
  ],
};
const renewed: RuntimeConfig = {
  ...base,
  injectionFiles: [
    { path: '/tls/cert.pem', mode: 0o644, content: b64('cert 2') },
    { path: '/tls/key.pem', mode: 0o600, content: b64('key 1') },
  ],
};

describe('renewalAction: only file contents change under a running program', () => {
  it('nothing changed: nothing to do; contents changed: rewrite, or restart when the policy says so', () => {
    assert.deepEqual(renewalAction(base, structuredClone(base)), { kind: 'none' });
    assert.deepEqual(renewalAction(base, renewed), { kind: 'rewrite' });
    const restart = renewalAction({ ...base, renewal: 'restart' }, { ...renewed, renewal: 'restart' });
    assert.deepEqual(restart, { kind: 'restart', why: 'the policy says renewal: restart' });
  });

  const cases: Array<[string, Partial<RuntimeConfig>, string]> = [
    ['an argument', { command: ['server', '--no-tls'] }, 'the command'],
    ['one more argument', { command: ['server', '--tls', '-v'] }, 'the command'],
    ['an environment value', { environment: { A: '1', B: '3' } }, 'the environment'],
    ['an environment name', { environment: { A: '1', C: '2' } }, 'the environment'],
    ['one more variable', { environment: { A: '1', B: '2', C: '3' } }, 'the environment'],
    ['the working directory', { pwd: '/' }, 'the working directory'],
    [
      'a file path',
      { injectionFiles: [renewed.injectionFiles[0]!, { ...renewed.injectionFiles[1]!, path: '/k' }] },
      'paths',
    ],
    [
      'a file mode',
      { injectionFiles: [renewed.injectionFiles[0]!, { ...renewed.injectionFiles[1]!, mode: 0o644 }] },
      'modes',
    ],
    ['one file fewer', { injectionFiles: [renewed.injectionFiles[0]!] }, 'paths'],
    ['the shield', { fspf: { path: '/app/fspf.pb', key: 'a'.repeat(64), tag: 'b'.repeat(32) } }, 'shield'],
    ['the renewal field', { renewal: 'restart' }, 'the renewal field'],
  ];
  for (const [what, change, why] of cases) {
    it(`${what} changed: restart, naming the field (never a value)`, () => {
      const action = renewalAction(base, { ...renewed, ...change });
      assert.equal(action.kind, 'restart');
      assert.ok(action.kind === 'restart' && action.why.includes(why), JSON.stringify(action));
      assert.doesNotMatch(JSON.stringify(action), /--no-tls|\/k"|cert 2|aaaa/);
    });
  }

  it('a command changed with identical files still restarts (no stale command is kept)', () => {
    assert.equal(renewalAction(base, { ...base, command: ['other'] }).kind, 'restart');
  });
});

/** A clock that moves only when told; timers fire in order of their due time. */
function fakeTimers(start = 0) {
  let now = start;
  const pending: Array<{ at: number; fn: () => void; id: number }> = [];
  let ids = 0;
  const delays: number[] = [];
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      assert.ok(ms >= 0 && ms <= MAX_TIMER_MS, `delay ${ms} outside setTimeout's range`);
      delays.push(ms);
      pending.push({ at: now + ms, fn, id: ++ids });
      return ids;
    },
    clearTimeout: (id) => {
      const i = pending.findIndex((p) => p.id === id);
      if (i >= 0) pending.splice(i, 1);
    },
  };
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      pending.sort((a, b) => a.at - b.at);
      const next = pending[0];
      if (!next || next.at > until) break;
      pending.shift();
      now = next.at;
      next.fn();
    }
    now = until;
  };
  return { timers, advance, delays, pending };
}

describe('callAt: waits by the clock, however long', () => {
  it('fires at the time, not before', () => {
    const clock = fakeTimers(1000);
    let fired = 0;
    callAt(clock.timers, 6000, () => fired++);
    clock.advance(4999);
    assert.equal(fired, 0);
    clock.advance(1);
    assert.equal(fired, 1);
  });

  it('chains waits longer than 2^31 - 1 ms (setTimeout would fire at once)', () => {
    const clock = fakeTimers(0);
    let fired = 0;
    const at = 3 * MAX_TIMER_MS + 5;
    callAt(clock.timers, at, () => fired++);
    clock.advance(at - 1);
    assert.equal(fired, 0);
    clock.advance(1);
    assert.equal(fired, 1);
    assert.deepEqual(clock.delays, [MAX_TIMER_MS, MAX_TIMER_MS, MAX_TIMER_MS, 5]);
  });

  it('a time already past fires at once; cancel stops it', () => {
    const clock = fakeTimers(10_000);
    let fired = 0;
    callAt(clock.timers, 5, () => fired++);
    const cancel = callAt(clock.timers, 20_000, () => fired++);
    cancel();
    clock.advance(20_000);
    assert.equal(fired, 1);
  });
});

describe('backoff and expiry', () => {
  it('backs off 1 s, 2 s, 4 s … up to the maximum', () => {
    assert.deepEqual([0, 1, 2, 3].map(backoff), [1000, 2000, 4000, 8000]);
    assert.equal(backoff(10), MAX_BACKOFF_MS);
    assert.equal(backoff(5000), MAX_BACKOFF_MS);
  });

  it("finds the first certificate's notAfter in the injected files, chains included; none: undefined", () => {
    const key = generatePrivateKey('P-256');
    const cert = (notAfter: number) =>
      pemEncode(
        'CERTIFICATE',
        issueCertificate({
          subjectKey: key,
          commonName: 'x',
          isCa: false,
          notBefore: new Date(0),
          notAfter: new Date(notAfter),
        }),
      );
    const later = Date.UTC(2031, 0, 1);
    const sooner = Date.UTC(2030, 5, 1);
    const config: RuntimeConfig = {
      ...base,
      injectionFiles: [
        { path: '/a', mode: 0o644, content: b64(cert(later)) },
        { path: '/b', mode: 0o644, content: b64(`${cert(later)}${cert(sooner)}`) },
        { path: '/c', mode: 0o600, content: b64('-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n') },
      ],
    };
    assert.equal(certificateExpiry(config), sooner);
    assert.equal(certificateExpiry(base), undefined);
  });
});
