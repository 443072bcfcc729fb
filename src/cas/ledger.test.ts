import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  IpcLedger,
  LocalLedger,
  PrimaryLedger,
  isLedgerGive,
  isLedgerTake,
  type LedgerAnswer,
  type LedgerChannel,
  type LedgerGive,
  type LedgerTake,
} from './ledger.js';

describe('the local ledger (one process)', () => {
  it('takes up to the cap per kind and key, synchronously, and a give frees one', () => {
    const ledger = new LocalLedger();
    assert.equal(ledger.take('connection', 'a', 2), true);
    assert.equal(ledger.take('connection', 'a', 2), true);
    assert.equal(ledger.take('connection', 'a', 2), false);
    assert.equal(ledger.take('write', 'a', 1), true, 'another kind has its own count');
    assert.equal(ledger.take('connection', 'b', 2), true, 'another key has its own count');
    ledger.give('connection', 'a');
    assert.equal(ledger.take('connection', 'a', 2), true);
    assert.equal(ledger.held('connection', 'a'), 2);
  });

  it('ignores a give of nothing held: it frees no slot taken later', () => {
    const ledger = new LocalLedger();
    ledger.give('follow', 'k');
    assert.equal(ledger.take('follow', 'k', 1), true);
    assert.equal(ledger.take('follow', 'k', 1), false);
  });
});

/** A worker as the primary's ledger sees it: its holder and the answers it got. */
function worker(primary: PrimaryLedger) {
  const holder = primary.holder();
  const answers: LedgerAnswer[] = [];
  let id = 0;
  return {
    holder,
    take(key: string, cap: number, kind: LedgerTake['kind'] = 'connection'): boolean {
      const message: LedgerTake = { veil: 'ledger-take', id: ++id, kind, key, cap };
      assert.equal(
        primary.handle(holder, message, (a) => answers.push(a)),
        true,
      );
      const answer = answers.at(-1)!;
      assert.equal(answer.id, id, 'answered by the id asked');
      return answer.ok;
    },
    give(key: string, kind: LedgerGive['kind'] = 'connection') {
      assert.equal(
        primary.handle(holder, { veil: 'ledger-give', kind, key }, () => assert.fail('a give is not answered')),
        true,
      );
    },
  };
}

describe("the primary's ledger", () => {
  it('refuses over the cap counted across all workers, per kind and key', () => {
    const primary = new PrimaryLedger();
    const [a, b] = [worker(primary), worker(primary)];
    assert.equal(a.take('10.0.0.1', 3), true);
    assert.equal(b.take('10.0.0.1', 3), true);
    assert.equal(b.take('10.0.0.1', 3), true);
    assert.equal(a.take('10.0.0.1', 3), false);
    assert.equal(b.take('10.0.0.1', 3), false);
    assert.equal(a.take('10.0.0.1', 1, 'write'), true);
    assert.equal(a.take('10.0.0.2', 3), true);
    b.give('10.0.0.1');
    assert.equal(a.take('10.0.0.1', 3), true, 'a slot given back by one worker is free for another');
    assert.equal(primary.held('connection', '10.0.0.1'), 3);
  });

  it("frees all of a worker's slots when it exits, and nothing of the others'", () => {
    const primary = new PrimaryLedger();
    const [a, b] = [worker(primary), worker(primary)];
    for (let i = 0; i < 3; i++) assert.equal(b.take('x', 4), true);
    assert.equal(b.take('k', 1, 'follow'), true);
    assert.equal(a.take('x', 4), true);
    primary.release(b.holder);
    assert.equal(primary.held('connection', 'x'), 1);
    assert.equal(primary.held('follow', 'k'), 0);
    for (let i = 0; i < 3; i++) assert.equal(a.take('x', 4), true);
    assert.equal(a.take('x', 4), false);
  });

  it('gives a worker that exited nothing, even for a message that was still on its way', () => {
    const primary = new PrimaryLedger();
    const [a, b] = [worker(primary), worker(primary)];
    primary.release(b.holder);
    assert.equal(b.take('x', 1), false);
    assert.equal(a.take('x', 1), true);
  });

  it("frees only what the giving worker holds: one worker's give cannot free another's slot", () => {
    const primary = new PrimaryLedger();
    const [a, b] = [worker(primary), worker(primary)];
    assert.equal(a.take('x', 1), true);
    b.give('x');
    assert.equal(b.take('x', 1), false);
  });

  it('handles only well-formed ledger messages', () => {
    const primary = new PrimaryLedger();
    const holder = primary.holder();
    const bad: unknown[] = [
      null,
      'ledger-take',
      { veil: 'listening', port: 1 },
      { veil: 'ledger-take', id: '1', kind: 'connection', key: 'x', cap: 1 },
      { veil: 'ledger-give', kind: 'connection', key: 7 },
    ];
    for (const message of bad) {
      assert.equal(
        primary.handle(holder, message, () => assert.fail('answered')),
        false,
        JSON.stringify(message),
      );
    }
    // Unreadable takes whose id can be read are answered no, so the worker stops waiting for them at once.
    const unreadable: unknown[] = [
      { veil: 'ledger-take', id: 1, kind: 'connection', key: 'x', cap: 0 },
      { veil: 'ledger-take', id: 2, kind: 'connection', key: 'x', cap: 1.5 },
      { veil: 'ledger-take', id: 3, kind: 'nonce', key: 'x', cap: 1 },
      { veil: 'ledger-take', id: 4, kind: 'connection', key: 'x'.repeat(257), cap: 1 },
    ];
    const answers: unknown[] = [];
    for (const message of unreadable)
      assert.equal(
        primary.handle(holder, message, (a) => answers.push(a)),
        true,
      );
    assert.deepEqual(
      answers,
      [1, 2, 3, 4].map((id) => ({ veil: 'ledger-answer', id, ok: false })),
    );
    assert.equal(primary.held('connection', 'x'), 0);
    assert.equal(isLedgerTake({ veil: 'ledger-take', id: 1, kind: 'write', key: '::/64', cap: 1 }), true);
    assert.equal(isLedgerGive({ veil: 'ledger-give', kind: 'follow', key: 'k' }), true);
  });
});

/** The worker's end of a channel whose primary the test plays. */
function fakeChannel(open = true) {
  const sent: Array<LedgerTake | LedgerGive> = [];
  let deliver: (message: unknown) => void = () => {};
  const channel: LedgerChannel = {
    send: (message) => {
      if (!open) return false;
      sent.push(message);
      return true;
    },
    onMessage: (listener) => (deliver = listener),
  };
  return { channel, sent, answer: (id: number, ok: boolean) => deliver({ veil: 'ledger-answer', id, ok }) };
}

describe("a worker's ledger (IPC to the primary)", () => {
  // Its timers do not hold a process open (a worker's IPC channel does): the test's own timer does here.
  let alive: NodeJS.Timeout;
  before(() => {
    alive = setInterval(() => {}, 1_000);
  });
  after(() => clearInterval(alive));
  it('asks the primary and settles with its answer, each take by its own id; gives are sent', async () => {
    const fake = fakeChannel();
    const warnings: string[] = [];
    const ledger = new IpcLedger(fake.channel, (w) => warnings.push(w), 10_000);
    const first = ledger.take('connection', '10.0.0.1', 4);
    const second = ledger.take('write', '10.0.0.1', 1);
    assert.deepEqual(fake.sent, [
      { veil: 'ledger-take', id: 1, kind: 'connection', key: '10.0.0.1', cap: 4 },
      { veil: 'ledger-take', id: 2, kind: 'write', key: '10.0.0.1', cap: 1 },
    ]);
    fake.answer(2, false);
    fake.answer(1, true);
    assert.equal(await first, true);
    assert.equal(await second, false);
    ledger.give('connection', '10.0.0.1');
    assert.deepEqual(fake.sent.at(-1), { veil: 'ledger-give', kind: 'connection', key: '10.0.0.1' });
    assert.deepEqual(warnings, []);
  });

  it('refuses when the primary does not answer in time, says so, and gives back a yes that comes late', async () => {
    const fake = fakeChannel();
    const warnings: string[] = [];
    const ledger = new IpcLedger(fake.channel, (w) => warnings.push(w), 20);
    assert.equal(await ledger.take('follow', 'k', 4), false);
    assert.match(
      warnings.join('\n'),
      /primary did not answer a follow slot request within 20 ms: refused \(default deny\)/,
    );
    assert.equal(await ledger.take('follow', 'k', 4), false);
    assert.equal(warnings.length, 1, 'one warning, not one per refusal');
    const before = fake.sent.length;
    fake.answer(1, true);
    assert.equal(fake.sent.length, before + 1);
    assert.deepEqual(fake.sent.at(-1), { veil: 'ledger-give', kind: 'follow', key: 'k' });
    const sent = fake.sent.length;
    fake.answer(1, true);
    assert.equal(fake.sent.length, sent, 'an answer is acted on once');
  });

  it('refuses at once, asking nothing, while too many takes are unanswered', async () => {
    const fake = fakeChannel();
    const warnings: string[] = [];
    const ledger = new IpcLedger(fake.channel, (w) => warnings.push(w), 10_000, 2);
    const first = ledger.take('connection', 'a', 9);
    void ledger.take('connection', 'a', 9);
    assert.equal(await ledger.take('connection', 'a', 9), false);
    assert.equal(fake.sent.length, 2);
    assert.match(warnings.join('\n'), /has not answered 2 slot requests: refused/);
    fake.answer(1, true);
    assert.equal(await first, true);
    const third = ledger.take('connection', 'a', 9);
    assert.equal(fake.sent.length, 3, 'asked again once one was answered');
    fake.answer(3, true);
    assert.equal(await third, true);
  });

  it('refuses at once when the channel to the primary is closed', async () => {
    const fake = fakeChannel(false);
    const warnings: string[] = [];
    const ledger = new IpcLedger(fake.channel, (w) => warnings.push(w), 10_000);
    assert.equal(await ledger.take('connection', 'a', 1), false);
    assert.match(warnings.join('\n'), /cannot be reached/);
  });
});
