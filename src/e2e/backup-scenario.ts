import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  type Ack,
  backupContents,
  client,
  type KitStore,
  type StoreKit,
  storeItemCount,
  writer,
} from './backup-kit.js';
import { ephemeral, type Identity } from '../cas/testing.js';
import { type CasProcess, veil } from './harness.js';

const WRITERS = 4;
/** Acknowledged writes before the backup starts: enough that the backup has something to miss. */
const WRITES_BEFORE = 40;

/**
 * The store-agnostic body of the backup e2e test: a CAS on `kit`'s store under concurrent writes is backed up
 * by `veil cas backup`; every write acknowledged before it started is in the backup; the backup restores into
 * a new store on which a CAS serves the same versions; a tampered and a truncated copy are refused and leave
 * their target empty.
 */
export function backupScenario(kit: () => StoreKit, workDir: () => string) {
  const state: { kit?: StoreKit; file?: string; acks: Ack[]; before: number; fingerprint?: string } = {
    acks: [],
    before: 0,
  };
  const identities = Array.from({ length: WRITERS }, () => ephemeral());
  const keyArgs = () => ['--master-key-file', state.kit!.masterKeyFile];

  return {
    underWrites: async (t: TestContext) => {
      state.kit = kit();
      const source = await state.kit.create('source');
      const cas = await source.serve();
      t.after(() => cas.stop('SIGKILL'));
      const writers = Array.from({ length: WRITERS }, (_, i) => writer(cas, i, identities[i]!, state.acks));
      let stopped = false;
      const stopWriters = async () => {
        if (stopped) return;
        stopped = true;
        const failures = (await Promise.all(writers.map((w) => w.stop()))).filter((e) => e !== undefined);
        assert.deepEqual(failures, [], 'every write was acknowledged or retried after a 429');
      };
      try {
        await until(() => state.acks.length >= WRITES_BEFORE);
        state.file = join(workDir(), 'cas.vbk');
        const started = Date.now();
        const r = await veil(['cas', 'backup', ...source.args, ...keyArgs(), '--out', state.file], {});
        const ended = Date.now();
        assert.equal(r.code, 0, r.stderr);
        assertQuiet(state.kit, r);
        const before = state.acks.filter((a) => a.at < started);
        const during = state.acks.filter((a) => a.at >= started && a.at <= ended);
        const { versions, heads } = await backupContents(state.file, state.kit.masterKey);
        const missing = before.filter((a) => !versions.has(`${a.name}@${a.hash}`));
        t.diagnostic(
          `acknowledged before backup ${before.length}, during it ${during.length}, in backup ${versions.size} ` +
            `versions of ${heads.size} sessions, missing ${missing.length} (${state.kit.name}, ${r.stdout.trim()})`,
        );
        assert.deepEqual(missing, [], 'every write acknowledged before the backup began is in it');
        assert.ok(during.length > 0, 'the CAS went on acknowledging writes while the backup ran');
        assert.equal(statSync(state.file).mode & 0o777, 0o600);
        state.before = before.length;
        state.fingerprint = cas.fingerprint;
        await stopWriters();
      } finally {
        try {
          await stopWriters();
        } finally {
          await cas.stop();
        }
      }
    },

    restores: async (t: TestContext) => {
      const target = await state.kit!.create('restored');
      const r = await veil(['cas', 'restore', '--in', state.file!, ...target.args, ...keyArgs()], {});
      assert.equal(r.code, 0, r.stderr);
      assertQuiet(state.kit!, r);
      const { versions, heads } = await backupContents(state.file!, state.kit!.masterKey);
      assert.match(r.stdout, new RegExp(`${versions.size} versions, ${heads.size} sessions`));
      const cas = await target.serve();
      t.after(() => cas.stop('SIGKILL'));
      try {
        assert.equal(cas.fingerprint, state.fingerprint, 'the restored CAS has the same identity (CA)');
        const kept = state.acks.filter((a) => versions.has(`${a.name}@${a.hash}`));
        const { read, same } = await readBack(cas, identities, kept, heads);
        t.diagnostic(
          `restored ${versions.size} versions, read back ${read} (acknowledged versions and heads), ` +
            `same hash ${same} (${state.kit!.name})`,
        );
        assert.equal(same, read);
        assert.ok(read >= state.before + heads.size);
        const again = await veil(['cas', 'restore', '--in', state.file!, ...target.args, ...keyArgs()], {});
        assert.notEqual(again.code, 0);
        assert.match(again.stderr, /STORE_NOT_EMPTY/);
      } finally {
        await cas.stop();
      }
    },

    refuses: async (t: TestContext) => {
      const bytes = readFileSync(state.file!);
      const cases = {
        BACKUP_TAMPERED: Buffer.from(bytes).fill(0x55, bytes.length >> 1, (bytes.length >> 1) + 1),
        BACKUP_TRUNCATED: bytes.subarray(0, bytes.length - 100),
      };
      for (const [code, changed] of Object.entries(cases)) {
        const file = join(workDir(), `${code}.vbk`);
        writeFileSync(file, changed);
        const target = await state.kit!.create(code.toLowerCase());
        const r = await veil(['cas', 'restore', '--in', file, ...target.args, ...keyArgs()], {});
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, new RegExp(code));
        assert.equal(await storeItemCount(target.location, state.kit!.masterKey), 0, `${code}: target empty`);
        t.diagnostic(`${code}: refused, target empty`);
      }
    },
  };
}

/** Every acknowledged version the backup holds is read back by its hash, and each head as the current one. */
async function readBack(cas: CasProcess, identities: Identity[], kept: Ack[], heads: Map<string, string>) {
  let read = 0;
  let same = 0;
  const clients = identities.map((me) => client(cas, me));
  const writerOf = new Map(kept.map((a) => [a.name, a.writer]));
  const check = async (writer: number, name: string, hash: string, query: string) => {
    const r = await clients[writer]!.call(`/v1/sessions/${name}${query}`);
    read++;
    if (r.status === 200 && r.json.hash === hash) same++;
  };
  try {
    for (const a of kept) await check(a.writer, a.name, a.hash, `?hash=${a.hash}`);
    for (const [name, head] of heads) {
      const w = writerOf.get(name);
      if (w !== undefined) await check(w, name, head, '');
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return { read, same };
}

async function until(check: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > end) throw new Error('the writers did not get going');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export type { KitStore };

/** The store's secret (a database password in its URL) is in no output of the commands. */
function assertQuiet(kit: StoreKit, r: { stdout: string; stderr: string }): void {
  if (kit.secret === undefined) return;
  assert.ok(!r.stdout.includes(kit.secret) && !r.stderr.includes(kit.secret), 'the password is printed');
}
