import { memoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, describe, it } from 'node:test';
import { isAllowed } from './access.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { sessionOf } from './parsed.js';
import { listSessions, writeSession, type CasContext } from './sessions.js';
import { loadMasterKey, openSqliteStore, type Store } from './store/index.js';
import { ephemeral } from './testing.js';

const root = mkdtempSync(join(tmpdir(), 'veil-readers-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function open(dataDir = join(root, `d${n++}`)): { ctx: CasContext; dataDir: string } {
  const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
  return { ctx: { store, now: () => new Date(), audit: memoryAuditLog() }, dataDir };
}

const [a, b, c] = [ephemeral(), ephemeral(), ephemeral()];
const ids = [a, b, c].map((x) => identityFromPem(x.certPem));
const [idA, idB, idC] = ids as [ClientIdentity, ClientIdentity, ClientIdentity];
const pemEntry = (pem: string) =>
  [
    '    - |',
    ...pem
      .trim()
      .split('\n')
      .map((l) => `      ${l}`),
  ].join('\n');

const SESSIONS: Record<string, string | undefined> = {
  'by-creator': undefined,
  'by-any': '  read: [ANY]',
  'by-none': '  read: [NONE]',
  'by-hash': `  read: [${idB.keyHash.toUpperCase()}]`,
  'by-cert': `  read:\n${pemEntry(c.certPem)}`,
  // The session language refuses entries that are no identity; a key hash nobody holds names nobody.
  'by-nobody': `  read: [${'ab'.repeat(32)}]`,
  'creator-and-b': `  read: [CREATOR, ${idB.keyHash}]`,
};

const text = (name: string, read: string | undefined, predecessor?: string) =>
  [
    `name: ${name}`,
    ...(predecessor ? [`predecessor: ${predecessor}`] : []),
    ...(read ? ['access_policy:', read] : []),
    '',
  ].join('\n');

async function writeAll(ctx: CasContext): Promise<void> {
  for (const [name, read] of Object.entries(SESSIONS)) await writeSession(ctx, text(name, read), idA);
}

/** What isAllowed says, session by session: the index must agree with it for every client. */
async function expected(store: Store, client: ClientIdentity | undefined): Promise<string[]> {
  const out: string[] = [];
  for (const e of await store.list()) {
    const record = (await store.current(e.name))!;
    if (isAllowed(sessionOf(record).access_policy, 'read', client, record.creator)) out.push(e.name);
  }
  return out;
}

const names = async (ctx: CasContext, client: ClientIdentity | undefined) =>
  (await listSessions(ctx, client)).map((s) => s.name);

describe('GET /v1/sessions from the read index', () => {
  it('lists exactly the sessions each client may read, as isAllowed judges them', async () => {
    const { ctx } = open();
    await writeAll(ctx);
    assert.deepEqual(await names(ctx, idA), ['by-any', 'by-creator', 'creator-and-b']);
    assert.deepEqual(await names(ctx, idB), ['by-any', 'by-hash', 'creator-and-b']);
    assert.deepEqual(await names(ctx, idC), ['by-any', 'by-cert']);
    assert.deepEqual(await names(ctx, undefined), ['by-any']);
    for (const client of [idA, idB, idC, undefined])
      assert.deepEqual(await names(ctx, client), await expected(ctx.store, client));
    const listed = (await listSessions(ctx, idB)).find((s) => s.name === 'by-hash');
    assert.deepEqual(listed?.hash, (await ctx.store.current('by-hash'))?.hash);
    await ctx.store.close();
  });

  it('follows updates that change the readers, and lists the current hash', async () => {
    const { ctx } = open();
    await writeAll(ctx);
    const anyHash = (await ctx.store.current('by-any'))!.hash;
    await writeSession(ctx, text('by-any', `  read: [${idC.keyHash}]`, anyHash), idA);
    const hashHash = (await ctx.store.current('by-hash'))!.hash;
    await writeSession(ctx, text('by-hash', '  read: [ANY]', hashHash), idA);
    assert.deepEqual(await names(ctx, idB), ['by-hash', 'creator-and-b'], 'b lost by-any, by-hash is now anyone');
    assert.deepEqual(await names(ctx, idC), ['by-any', 'by-cert', 'by-hash']);
    assert.deepEqual(await names(ctx, undefined), ['by-hash']);
    assert.equal(
      (await listSessions(ctx, idC)).find((s) => s.name === 'by-any')?.hash,
      (await ctx.store.current('by-any'))!.hash,
    );
    for (const client of [idA, idB, idC, undefined])
      assert.deepEqual(await names(ctx, client), await expected(ctx.store, client));
    await ctx.store.close();
  });

  it('builds the index for a database written before it existed', async () => {
    const { ctx, dataDir } = open();
    await writeAll(ctx);
    await ctx.store.close();
    const db = new Database(join(dataDir, 'cas.db'));
    db.exec('DROP TABLE session_readers; DROP TABLE session_readers_of');
    db.close();
    const reopened = open(dataDir).ctx;
    assert.deepEqual(await names(reopened, idB), ['by-any', 'by-hash', 'creator-and-b']);
    for (const client of [idA, idB, idC, undefined]) {
      assert.deepEqual(await names(reopened, client), await expected(reopened.store, client));
    }
    await reopened.store.close();
  });

  it('indexes again a head written by a CAS that did not keep the index', async () => {
    const { ctx, dataDir } = open();
    await writeAll(ctx);
    const raw = new Database(join(dataDir, 'cas.db'));
    type Row = Record<string, unknown>;
    const rows = (table: string) => raw.prepare(`SELECT * FROM ${table} WHERE name = 'by-any'`).all() as Row[];
    const [readers, of] = [rows('session_readers'), rows('session_readers_of')];
    await writeSession(ctx, text('by-any', `  read: [${idC.keyHash}]`, (await ctx.store.current('by-any'))!.hash), idA);
    await ctx.store.close();
    // What an older CAS leaves behind: the new head, and the index rows of the version before.
    for (const table of ['session_readers', 'session_readers_of']) {
      raw.exec(`DELETE FROM ${table} WHERE name = 'by-any'`);
    }
    const insert = (table: string, row: Row) =>
      raw.prepare(`INSERT INTO ${table} VALUES (?, ?)`).run(...Object.values(row));
    for (const row of readers) insert('session_readers', row);
    for (const row of of) insert('session_readers_of', row);
    raw.close();
    const reopened = open(dataDir).ctx;
    assert.deepEqual(await names(reopened, idB), ['by-hash', 'creator-and-b'], 'no longer by-any');
    assert.deepEqual(await names(reopened, idC), ['by-any', 'by-cert']);
    await reopened.store.close();
  });

  it('does not name readers in clear in the database', async () => {
    const { ctx, dataDir } = open();
    await writeAll(ctx);
    await ctx.store.close();
    for (const f of readdirSync(dataDir).filter((x) => x.startsWith('cas.db'))) {
      const bytes = readFileSync(join(dataDir, f)).toString('latin1').toLowerCase();
      assert.ok(!bytes.includes(idB.keyHash), `${f} holds b's key hash`);
      assert.ok(!bytes.includes(idC.keyHash), `${f} holds c's key hash`);
    }
  });
});
