import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { chainEntries } from '../../audit/chain.js';
import { AuditError } from '../../audit/errors.js';
import { exportText, sampleEvent, testAuthority } from '../../audit/testkit.js';
import type { AuditEntry, AuditHead, AuditLog, EntryMaker } from '../../audit/types.js';
import { verifyAuditExport } from '../../audit/verify.js';
import { record, type Storage } from './contract-cases.js';
import type { Store } from './index.js';

/** A session version and its audit entry in one transaction (Store.append's `audit`), over both backends. */
const authority = testAuthority();
const hex = (text: string) => createHash('sha256').update(text).digest('hex');
const version = (name: string, n: number, prev: number | null = null) =>
  record(name, hex(`${name}#${n}`), prev === null ? null : hex(`${name}#${prev}`));

/** The maker of one version's entry, counting its calls. */
function entryOf(name: string, n: number, prev: number | null = null) {
  const made = { calls: 0 };
  const old = prev === null ? null : hex(`${name}#${prev}`);
  const type = prev === null ? 'session.created' : 'session.updated';
  const event = { type, session: name, actor: hex('alice'), old_hash: old, new_hash: hex(`${name}#${n}`) } as const;
  const make: EntryMaker = (head) => {
    made.calls++;
    return chainEntries(head, [event], new Date(), authority.signer);
  };
  return Object.assign(make, made);
}

const failing = (): EntryMaker => () => {
  throw new AuditError('AUDIT_STORE', 'no signature today');
};

async function all(store: Store): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let page = await store.readAudit(0, 500); page.length > 0; page = await store.readAudit(out.at(-1)!.seq, 500)) {
    out.push(...page);
  }
  return out;
}

/** The store's chain exported and checked as `veil audit verify` does (hashes, signatures, links, trailer). */
async function verified(store: Store): Promise<AuditHead> {
  const unused = () => Promise.reject(new Error('read only'));
  const log: AuditLog = {
    read: (after, limit) => store.readAudit(after, limit),
    head: () => store.auditHead(),
    certificates: async () => [authority.certPem],
    record: unused,
    withEntry: unused,
  };
  return (await verifyAuditExport(await exportText(log, authority), { caPem: authority.caPem })).head;
}

const sessionEvents = (entries: AuditEntry[]) =>
  entries.flatMap((e) => (e.event.type === 'session.created' || e.event.type === 'session.updated' ? [e.event] : []));

export function atomicContract(label: string, storage: () => Promise<Storage>): void {
  describe(`${label} store contract: a version and its audit entry in one transaction`, () => {
    it('commits the version with its entry after the tail; the chain verifies', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.appendAudit((head) => chainEntries(head, [sampleEvent(1)], new Date(), authority.signer));
      assert.deepEqual(await store.append(version('a', 1), null, undefined, entryOf('a', 1)), { ok: true });
      assert.deepEqual(await store.append(version('a', 2, 1), hex('a#1'), new Map(), entryOf('a', 2, 1)), {
        ok: true,
      });
      assert.equal((await store.current('a'))?.hash, hex('a#2'));
      const events = sessionEvents(await all(store));
      assert.deepEqual(
        events.map((e) => [e.type, e.new_hash]),
        [
          ['session.created', hex('a#1')],
          ['session.updated', hex('a#2')],
        ],
      );
      assert.deepEqual(await verified(store), await store.auditHead());
      assert.equal((await store.auditHead()).seq, 3);
      await store.close();
    });

    it('writes neither the version nor an entry when the maker throws or breaks the chain', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(version('b', 1), null, undefined, entryOf('b', 1));
      const before = await store.auditHead();
      await assert.rejects(store.append(version('a', 1), null, undefined, failing()), /no signature today/);
      await assert.rejects(store.append(version('b', 2, 1), hex('b#1'), undefined, failing()), /no signature today/);
      const stale: EntryMaker = () => entryOf('b', 2, 1)({ seq: 0, hash: '0'.repeat(64) });
      await assert.rejects(store.append(version('b', 3, 1), hex('b#1'), undefined, stale), /does not continue/);
      assert.equal(await store.current('a'), undefined);
      assert.equal((await store.current('b'))?.hash, hex('b#1'));
      assert.equal(await store.version('b', hex('b#3')), undefined);
      assert.deepEqual(
        (await store.list()).map((e) => e.name),
        ['b'],
      );
      assert.deepEqual(await store.auditHead(), before);
      await store.close();
    });

    it('calls no maker and writes no entry for a refused append', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(version('ns', 1), null, undefined, entryOf('ns', 1));
      await store.append(version('ns', 2, 1), hex('ns#1'), undefined, entryOf('ns', 2, 1));
      const before = await store.auditHead();
      const makers = [entryOf('ns', 3), entryOf('ns', 3, 9), entryOf('ns/a', 1)];
      assert.deepEqual(await store.append(version('ns', 3), null, undefined, makers[0]), {
        ok: false,
        current: hex('ns#2'),
      });
      assert.equal((await store.append(version('ns', 3, 9), hex('ns#9'), undefined, makers[1])).ok, false);
      const judged = new Map([['ns', hex('ns#1')]]);
      assert.deepEqual(await store.append(version('ns/a', 1), null, judged, makers[2]), {
        ok: false,
        current: null,
        moved: 'ns',
      });
      assert.deepEqual(
        makers.map((m) => m.calls),
        [0, 0, 0],
      );
      assert.deepEqual(await store.auditHead(), before);
      await store.close();
    });

    it('keeps ONE chain when two handles append versions and group-committed entries at once', async (t) => {
      const s = await storage();
      const key = randomBytes(32);
      const [one, two] = [await s.open(key), await s.open(key)];
      const rounds = 12;
      const writes = [one, two].flatMap((store, k) =>
        Array.from({ length: rounds }, (_, i) => [
          store.append(version(`r${k}/s${i}`, 1), null, undefined, entryOf(`r${k}/s${i}`, 1)),
          store.appendAudit((head) =>
            chainEntries(head, [sampleEvent(i), sampleEvent(i + 1)], new Date(), authority.signer),
          ),
        ]).flat(),
      );
      await Promise.all(writes);
      const entries = await all(one);
      assert.equal(entries.length, 2 * rounds * 3);
      assert.deepEqual(
        entries.map((e) => e.seq),
        entries.map((_, i) => i + 1),
      );
      const created = sessionEvents(entries).filter((e) => e.session.startsWith('r'));
      assert.equal(created.length, 2 * rounds);
      for (const { name, hash } of await one.list()) {
        assert.deepEqual(
          created.filter((e) => e.session === name).map((e) => e.new_hash),
          [hash],
          name,
        );
      }
      assert.deepEqual(await verified(one), await one.auditHead());
      t.diagnostic(`versions ${2 * rounds}, entries ${entries.length}, forks 0`);
      await Promise.all([one.close(), two.close()]);
    });
  });
}
