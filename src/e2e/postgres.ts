import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * A real PostgreSQL for tests: a fresh cluster in a temporary directory on a free loopback port, password
 * authentication (scram-sha-256) for TCP, stopped and removed by stop(). initdb refuses to run as root, so as
 * root every server program runs as the `postgres` user (Debian's postgresql package creates it). The
 * password travels in PGPASSWORD, never in an argument list.
 */
export interface Postgres {
  port: number;
  /** The cluster's data directory. */
  dataDir: string;
  user: string;
  password: string;
  /** postgres://USER@127.0.0.1:PORT/DB — the password is in env(), as a Kubernetes Secret would pass it. */
  url(database: string): string;
  env(): { PGPASSWORD: string };
  createDatabase(name: string): Promise<string>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** kill -9 of the postmaster: a crash, not a shutdown (its backends exit when they notice). */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

export interface Standby extends Postgres {
  /** Ends recovery: the standby becomes a primary that accepts writes. */
  promote(): Promise<void>;
}

const exec = promisify(execFile);
const USER = 'veil';

/** The directory of initdb, pg_ctl and pg_basebackup: pg_config's, or the newest Debian installs. */
export function postgresBinDir(): string {
  const candidates = [...pgConfigBinDir(), ...debianBinDirs()];
  const found = candidates.find((d) => existsSync(join(d, 'initdb')));
  if (!found)
    throw new Error('PostgreSQL server programs not found: install Debian package postgresql (make test does)');
  return found;
}

function pgConfigBinDir(): string[] {
  try {
    return [execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()];
  } catch {
    return [];
  }
}

function debianBinDirs(): string[] {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)) : [];
  return versions.sort((a, b) => Number(b) - Number(a)).map((v) => join(base, v, 'bin'));
}

const asRoot = () => process.getuid?.() === 0;

/** Runs a server program as the postgres user when this is root (initdb and postgres refuse root). */
async function server(program: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const bin = join(postgresBinDir(), program);
  const [cmd, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    const { stdout } = await exec(cmd, argv, { env: { ...process.env, ...env }, maxBuffer: 8 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${program} failed: ${e.stderr || e.message}`);
  }
}

/** A directory the server's user owns (0700). */
function serverDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o700);
  if (asRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  return dir;
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no postgres user: install Debian package postgresql (make test does)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function writeOwned(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  if (asRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(path, uid, gid);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Settings of every test cluster. fsync is off: the tests kill processes, never the machine, and the page
 * cache survives a process; a test of power loss would need it on.
 */
function settings(dir: string, port: number): string {
  return [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'fsync = off',
    'max_connections = 60',
    "wal_level = 'replica'",
    'max_wal_senders = 4',
    '',
  ].join('\n');
}

/** Starts a fresh primary. */
export async function startPostgres(): Promise<Postgres> {
  const dir = serverDir('veil-pg-');
  const dataDir = join(dir, 'data');
  const password = randomBytes(18).toString('hex');
  const pwfile = join(dir, 'pw');
  writeOwned(pwfile, `${password}\n`);
  await server('initdb', [
    '-D',
    dataDir,
    '-U',
    USER,
    `--pwfile=${pwfile}`,
    '--auth-host=scram-sha-256',
    '--auth-local=peer',
    '--no-sync',
    '--no-instructions',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  rmSync(pwfile);
  const port = await freePort();
  appendFileSync(join(dataDir, 'postgresql.conf'), settings(dir, port));
  return started(dir, dataDir, port, password);
}

async function started(dir: string, dataDir: string, port: number, password: string): Promise<Postgres> {
  await server('pg_ctl', ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const url = (database: string) => `postgres://${USER}@127.0.0.1:${port}/${database}`;
  const query = async <T>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: USER, password, database });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  let gone = false;
  const postmaster = () => Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // A test process that dies without its after hooks (an uncaught error) still takes its server along.
  const onExit = () => {
    if (gone) return;
    try {
      process.kill(postmaster(), 'SIGQUIT');
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  return {
    port,
    dataDir,
    user: USER,
    password,
    url,
    env: () => ({ PGPASSWORD: password }),
    query,
    createDatabase: async (name) => {
      await query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return url(name);
    },
    crash: async () => {
      process.kill(postmaster(), 'SIGKILL');
      gone = true;
    },
    stop: async () => {
      if (!gone) await server('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
      gone = true;
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A streaming standby of `primary` (pg_basebackup -R: it follows the primary from the backup on). With
 * `synchronous`, the primary then waits for it on every commit (synchronous_standby_names), so that a commit
 * the primary acknowledged is on the standby too.
 */
export async function startStandby(primary: Postgres, opts: { synchronous: boolean }): Promise<Standby> {
  const dir = serverDir('veil-pg-standby-');
  const dataDir = join(dir, 'data');
  const base = ['-D', dataDir, '-h', '127.0.0.1', '-p', String(primary.port), '-U', primary.user];
  await server('pg_basebackup', [...base, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'], primary.env());
  const port = await freePort();
  appendFileSync(join(dataDir, 'postgresql.conf'), settings(dir, port));
  const standby = await started(dir, dataDir, port, primary.password);
  if (opts.synchronous) await makeSynchronous(primary);
  return {
    ...standby,
    promote: async () => {
      await server('pg_ctl', ['-D', dataDir, '-w', '-t', '60', 'promote']);
    },
  };
}

async function makeSynchronous(primary: Postgres): Promise<void> {
  await primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'");
  await primary.query('SELECT pg_reload_conf()');
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const rows = await primary.query<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication');
    if (rows.some((r) => r.sync_state === 'sync')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the standby did not become synchronous within 30 s');
}
