/**
 * How `npm run bench:store` fills its stores. The bulk of the 100,000 is made by the CAS's own write path
 * (writeSession: parse, validate, keys and certificates) in two child processes, each into a private SQLite
 * store so that neither waits for the other's write lock, and is then moved into the measured store with
 * `Store.load` — the path `veil cas restore` takes: every record sealed under that store's master key, its read
 * index built, and one audit chain holding every `session.created`/`session.updated` event, signed with that
 * store's audit key, as `veil cas serve` would have written it. A few hundred more are then created through a
 * running CAS's HTTPS API (POST /v1/sessions): that is the create rate the bench reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { chainEntries } from '../audit/chain.js';
import type { AuditEvent } from '../audit/types.js';
import { memoryAuditLog } from '../cas/audit-testing.js';
import { loadAuditKey, openAuditLog } from '../cas/audit-log.js';
import { identityFromPem } from '../cas/identity-of.js';
import { writeSession } from '../cas/sessions.js';
import { loadMasterKey, openSqliteStore, type Store, type StoreItem } from '../cas/store/index.js';
import type { Identity } from '../cas/testing.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * Sessions per team (names `team-N-…`, not a namespace: a namespace needs its parent session and a
 * create_sessions policy first): the first a Redis session, the others Flask sessions importing from it.
 */
export const TEAM = 10;
/** Every this many Flask sessions, one gets a second version (an update with its predecessor). */
const UPDATE_EVERY = 20;

function template(which: 'flask' | 'redis'): string {
  return readFileSync(join(ROOT, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`), 'utf8');
}

function filled(text: string, vars: Record<string, string>): string {
  return text.replace(/(?<!\$)\$([A-Z_][A-Z0-9_]*)/g, (m, name: string) => vars[name] ?? m);
}

const teamOf = (i: number) => Math.floor(i / TEAM);
/** `prefix` tells the bulk's sessions (`team`) from those created through the API (`api`). */
export const sessionName = (i: number, prefix = 'team') =>
  i % TEAM === 0 ? `${prefix}-${teamOf(i)}-redis` : `${prefix}-${teamOf(i)}-flask-${i % TEAM}`;

/** Session i's text: fresh secrets and measurements in each; nothing is shared but the team's Redis. */
function policyOf(i: number, prefix: string): { text: string; next?: string } {
  const vars = {
    MRENCLAVE: randomBytes(32).toString('hex'),
    SCONE_FSPF_KEY: randomBytes(32).toString('hex'),
    SCONE_FSPF_TAG: randomBytes(16).toString('hex'),
    FLASK_SESSION: sessionName(i % TEAM === 0 ? i + 1 : i, prefix),
    REDIS_SESSION: sessionName(teamOf(i) * TEAM, prefix),
  };
  if (i % TEAM === 0) return { text: filled(template('redis'), vars) };
  const text = filled(template('flask'), vars);
  if (i % UPDATE_EVERY !== 1) return { text };
  return { text, next: filled(template('flask'), { ...vars, MRENCLAVE: randomBytes(32).toString('hex') }) };
}

/**
 * One child of the bulk: sessions [from, to) through writeSession into a private store in `dir`, its audit
 * events (in the order written) into `dir`/events.jsonl; progress on stdout every 250 sessions.
 */
export async function fillPart(dir: string, creatorPem: string, from: number, to: number): Promise<void> {
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  // The events are kept, not chained: the measured store's one chain is made when the parts are loaded.
  const audit = memoryAuditLog();
  const ctx = { store, now: () => new Date(), audit };
  const me = identityFromPem(creatorPem);
  let done = 0;
  for (let i = from; i < to; i++) {
    const { text, next } = policyOf(i, 'team');
    const written = await writeSession(ctx, text, me);
    if (next) await writeSession(ctx, `${next}\npredecessor: ${written.hash}\n`, me);
    if (++done % 250 === 0) process.stdout.write(`${JSON.stringify({ done: 250 })}\n`);
  }
  appendFileSync(
    join(dir, 'events.jsonl'),
    audit
      .events()
      .map((e) => `${JSON.stringify(e)}\n`)
      .join(''),
  );
  process.stdout.write(`${JSON.stringify({ done: done % 250 })}\n`);
  await store.close();
}

/** Sessions/s of the bulk (CPU of the write path on `parts` processes) and what the load into `dir` took. */
export interface BulkFigures {
  sessions: number;
  writeSeconds: number;
  /** null: not recorded (a kept store filled before this figure was kept). */
  loadSeconds: number | null;
}

/** Fills the empty store in `dir` with sessions [0, n) from `parts` children, then loads them into it. */
export async function bulkFill(dir: string, creator: Identity, n: number, parts: number): Promise<BulkFigures> {
  const work = mkdtempSync(join(tmpdir(), 'veil-bench-bulk-'));
  try {
    const started = performance.now();
    const per = Math.ceil(n / parts / TEAM) * TEAM;
    const dirs: string[] = [];
    const children: ChildProcess[] = [];
    let total = 0;
    for (let p = 0; p < parts; p++) {
      const [from, to] = [p * per, Math.min(n, (p + 1) * per)];
      if (from >= to) continue;
      const part = join(work, `part-${p}`);
      dirs.push(part);
      const args = [fileURLToPath(new URL('./store.js', import.meta.url)), 'fill', part, String(from), String(to)];
      const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      child.stdin!.end(creator.certPem);
      child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n').filter(Boolean))
          total += (JSON.parse(line) as { done: number }).done;
        process.stderr.write(`\r  bulk: ${total.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} sessions`);
      });
      children.push(child);
    }
    const codes = await Promise.all(children.map((c) => new Promise<number | null>((r) => c.once('exit', r))));
    process.stderr.write('\n');
    if (codes.some((c) => c !== 0)) throw new Error(`a fill process failed (exit codes ${codes.join(', ')})`);
    const written = performance.now();
    await loadParts(dir, dirs, work);
    return {
      sessions: total,
      writeSeconds: (written - started) / 1000,
      loadSeconds: (performance.now() - written) / 1000,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The CA and the audit key are made as a CAS's first start makes them (openAuditLog on a store of their own,
 * whose dump is loaded first): then every event of the parts is chained after them, signed with that key.
 */
async function loadParts(dir: string, parts: string[], work: string): Promise<void> {
  const seedDir = join(work, 'seed');
  const seed = openSqliteStore({ dataDir: seedDir, masterKey: loadMasterKey({ dataDir: seedDir }) });
  await (await openAuditLog(seed, () => new Date())).close();
  const key = await loadAuditKey(seed, new Date());
  const target = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  try {
    await target.load(itemsOf(seed, parts, key.signer));
  } finally {
    await target.close();
    await seed.close();
  }
}

async function* itemsOf(
  seed: Store,
  parts: string[],
  signer: Parameters<typeof chainEntries>[3],
): AsyncIterable<StoreItem> {
  let head = await seed.auditHead();
  for await (const item of seed.dump()) yield item;
  for (const dir of parts) {
    const part = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
    try {
      for await (const item of part.dump()) if (item.type === 'version' || item.type === 'head') yield item;
    } finally {
      await part.close();
    }
    const events = readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean);
    for (const line of events) {
      const [entry] = chainEntries(head, [JSON.parse(line) as AuditEvent], new Date(), signer);
      head = { seq: entry!.seq, hash: entry!.hash };
      yield { type: 'audit', entry: entry! };
    }
  }
}

/** Creates sessions [0, n) named `api-…` through the CAS at `url` as `creator`, `lanes` teams at a time (one:
 * the CAS takes one upload per client address at a time, README "Limits"). */
export async function createThroughApi(
  url: string,
  creator: Identity,
  n: number,
  prefix = 'api',
  lanes = 1,
): Promise<number> {
  const agent = new Agent({
    connections: lanes,
    connect: { rejectUnauthorized: false, cert: creator.certPem, key: creator.keyPem },
  });
  const post = async (text: string): Promise<string> => {
    const res = await request(`${url}/v1/sessions`, {
      method: 'POST',
      body: text,
      headers: { 'content-type': 'application/yaml' },
      dispatcher: agent,
    });
    const body = (await res.body.json()) as { hash?: string };
    if (res.statusCode === 429) {
      // The per-address upload caps (README "Limits") say when there is room again: a client as the CLI is.
      await new Promise((r) => setTimeout(r, Number(res.headers['retry-after'] ?? 0) * 1000 || 100));
      return post(text);
    }
    if (res.statusCode !== 200 && res.statusCode !== 201)
      throw new Error(`POST /v1/sessions answered ${res.statusCode}: ${JSON.stringify(body)}`);
    return body.hash!;
  };
  let nextTeam = 0;
  const teams = Math.ceil(n / TEAM);
  const lane = async () => {
    // A team in order (its Redis first: the Flask sessions import from it), other teams beside it.
    for (let team = nextTeam++; team < teams; team = nextTeam++) {
      for (let i = team * TEAM; i < Math.min(n, (team + 1) * TEAM); i++) {
        const { text, next } = policyOf(i, prefix);
        const hash = await post(text);
        if (next) await post(`${next}\npredecessor: ${hash}\n`);
      }
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: lanes }, lane));
  } finally {
    await agent.close();
  }
  return (n / (performance.now() - started)) * 1000;
}
