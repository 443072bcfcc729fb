import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exportLines } from '../audit/export.js';
import { loadAuditKey, openAuditLog } from '../cas/audit-log.js';
import { loadOrCreateCa } from '../cas/identity.js';
import { openStore, type StoreLocation } from '../cas/store/open.js';
import { pemEncode } from '../secrets/index.js';
import { tempDir, veil } from './harness.js';
import { startPostgres, type Postgres } from './postgres.js';

/**
 * The audit chain with real processes: an appender killed with SIGKILL at a random moment loses no acknowledged
 * entry (SQLite), two appenders on one PostgreSQL database keep one chain, and `veil audit verify` (a real CLI
 * process) checks the exported files, names a tampered line, and refuses a rollback given --head.
 */
const APPENDER = fileURLToPath(new URL('./audit-appender.js', import.meta.url));
const dir = tempDir('veil-audit-e2e-');
after(() => dir.cleanup());
const masterKey = randomBytes(32);
const keyEnv = { VEIL_MASTER_KEY: masterKey.toString('hex') };

/** Starts an appender; resolves with the "seq hash" lines it printed once it exits (or was killed). */
function appender(args: string[], env: NodeJS.ProcessEnv, onLine?: (n: number, kill: () => void) => void) {
  const child = spawn(process.execPath, [APPENDER, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let out = '';
  let killed = false;
  const kill = () => {
    if (!killed && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    killed = true;
  };
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    onLine?.(out.split('\n').length - 1, kill);
  });
  const done = new Promise<Map<number, string>>((resolve) =>
    child.once('exit', () => {
      const acked = new Map<number, string>();
      for (const line of out.split('\n')) {
        const [seq, hash] = line.split(' ');
        // A line cut by the kill is not an acknowledgement the test relies on.
        if (seq && hash?.length === 64) acked.set(Number(seq), hash);
      }
      resolve(acked);
    }),
  );
  after(() => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Gone already.
    }
  });
  return done;
}

/** Exports the store's log to FILE and writes its CA to ca.pem; returns the entries it read. */
async function exportTo(location: StoreLocation, env: { PGPASSWORD?: string }, file: string) {
  const store = await openStore({ location, masterKey, password: env.PGPASSWORD });
  try {
    const key = await loadAuditKey(store, new Date());
    const log = await openAuditLog(store, () => new Date());
    let text = '';
    for await (const line of exportLines(log, {
      caFingerprint: key.caFingerprint,
      signer: key.signer,
      now: new Date(),
    }))
      text += line;
    writeFileSync(file, text);
    writeFileSync(
      join(dir.path, 'ca.pem'),
      pemEncode('CERTIFICATE', (await loadOrCreateCa(store, new Date())).certDer),
    );
    const entries = await log.read(0, 1000);
    for (let after = entries.at(-1)?.seq ?? 0; ; after = entries.at(-1)!.seq) {
      const page = await log.read(after, 1000);
      if (page.length === 0) break;
      entries.push(...page);
    }
    return entries;
  } finally {
    await store.close();
  }
}

const ca = () => join(dir.path, 'ca.pem');

describe('audit log, SQLite, kill -9', () => {
  const data = join(dir.path, 'sqlite');

  it('keeps every acknowledged entry of an appender killed at a random moment, and the chain verifies', async (t) => {
    let acknowledged = 0;
    for (let round = 0; round < 3; round++) {
      const killAt = 50 + Math.floor(Math.random() * 600);
      const acked = await appender(['sqlite', data, '0', `r${round}`], keyEnv, (n, kill) => {
        if (n >= killAt) kill();
      });
      const file = join(dir.path, `sqlite-${round}.jsonl`);
      const stored = new Map((await exportTo({ data }, {}, file)).map((e) => [e.seq, e.hash]));
      for (const [seq, hash] of acked) assert.equal(stored.get(seq), hash, `acknowledged seq ${seq}`);
      const r = await veil(['audit', 'verify', file, '--ca', ca()], {});
      assert.equal(r.code, 0, r.stderr);
      acknowledged += acked.size;
      t.diagnostic(`round ${round}: acknowledged ${acked.size}, chain now ${stored.size}, lost 0`);
    }
    t.diagnostic(`acknowledged ${acknowledged}, lost 0`);
  });

  it('veil audit verify: prints the head, takes it back with --head, names a tampered line and a rollback', async () => {
    const older = join(dir.path, 'sqlite-0.jsonl');
    const newest = join(dir.path, 'sqlite-2.jsonl');
    const ok = await veil(['audit', 'verify', newest, '--ca', ca()], {});
    assert.equal(ok.code, 0, ok.stderr);
    const head = /^head (\d+:[0-9a-f]{64})$/m.exec(ok.stdout)?.[1];
    assert.ok(head, ok.stdout);
    const again = await veil(['audit', 'verify', newest, '--ca', ca(), '--head', head], {});
    assert.equal(again.code, 0, again.stderr);
    const rolledBack = await veil(['audit', 'verify', older, '--ca', ca(), '--head', head], {});
    assert.equal(rolledBack.code, 1);
    assert.match(rolledBack.stderr, /rolled back.*\[AUDIT_ROLLBACK\]/s);
    const lines = readFileSync(newest, 'utf8').split('\n');
    lines[5] = lines[5]!.replace('"secret":"s', '"secret":"S');
    const tampered = join(dir.path, 'tampered.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    const bad = await veil(['audit', 'verify', tampered, '--ca', ca()], {});
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /line 6 \(seq 5\) was edited.*\[AUDIT_EDITED\]/s);
    const usage = await veil(['audit', 'verify', newest], {});
    assert.equal(usage.code, 2);
  });
});

describe('audit log, PostgreSQL, two appenders', () => {
  let pg: Postgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.stop());

  it('keeps ONE verifiable chain when two processes append to one database at once', async (t) => {
    const url = await pg.createDatabase('audit');
    const env = { ...keyEnv, ...pg.env() };
    const each = 300;
    const [a, b] = await Promise.all([
      appender(['postgres', url, String(each), 'a'], env),
      appender(['postgres', url, String(each), 'b'], env),
    ]);
    const file = join(dir.path, 'pg.jsonl');
    const entries = await exportTo({ store: url }, pg.env(), file);
    const stored = new Map(entries.map((e) => [e.seq, e.hash]));
    for (const [seq, hash] of [...a, ...b]) assert.equal(stored.get(seq), hash, `acknowledged seq ${seq}`);
    assert.equal(a.size + b.size, 2 * each);
    const keys = entries.filter((e) => e.event.type === 'key.created' && e.event.key === 'audit');
    assert.equal(keys.length, 1, 'one audit key for both replicas');
    const r = await veil(['audit', 'verify', file, '--ca', ca()], {});
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`appenders 2, acknowledged ${a.size + b.size}, entries ${entries.length}, forks 0`);
  });
});
