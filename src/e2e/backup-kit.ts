import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { readBackupFile } from '../cas/backup/index.js';
import { openStore, type StoreLocation } from '../cas/store/open.js';
import { ephemeral, type Identity, type TestJson } from '../cas/testing.js';
import { type CasProcess, startCas } from './harness.js';
import type { Postgres } from './postgres.js';

/**
 * What the backup scenario needs of a store, whatever its kind: a new, empty one (its CLI flags, its location
 * for checks, a CAS served on it). A SQLite kit is below; a PostgreSQL kit gives databases instead of dirs.
 */
export interface KitStore {
  args: string[];
  location: StoreLocation;
  serve(): Promise<CasProcess>;
}

export interface StoreKit {
  name: string;
  /** The master key, in a 0600 file: on the command line only its path, never the key. */
  masterKeyFile: string;
  masterKey: Buffer;
  /** What must appear in no command's output (a database password given in its URL). */
  secret?: string;
  create(label: string): Promise<KitStore>;
}

export function sqliteKit(workDir: string): StoreKit {
  const { masterKey, masterKeyFile } = keyFile(workDir);
  return {
    name: 'SQLite',
    masterKeyFile,
    masterKey,
    create: async (label) => {
      const dataDir = join(workDir, `data-${label}`);
      return {
        args: ['--data', dataDir],
        location: { data: dataDir },
        serve: () => startCas(dataDir, workDir, ['--master-key-file', masterKeyFile]),
      };
    },
  };
}

/**
 * Databases of one PostgreSQL server. The password travels in the URL here (the scenario passes no
 * environment), which also checks that the commands never print it.
 */
export function postgresKit(workDir: string, server: Postgres): StoreKit {
  const { masterKey, masterKeyFile } = keyFile(workDir);
  return {
    name: 'PostgreSQL',
    secret: server.password,
    masterKeyFile,
    masterKey,
    create: async (label) => {
      const url = new URL(await server.createDatabase(`backup_${label.replace(/[^a-z0-9]/g, '_')}`));
      url.password = server.password;
      const store = url.href;
      return {
        args: ['--store', store],
        location: { store },
        serve: () =>
          startCas(join(workDir, `data-${label}`), workDir, ['--store', store, '--master-key-file', masterKeyFile]),
      };
    },
  };
}

function keyFile(workDir: string): { masterKey: Buffer; masterKeyFile: string } {
  const masterKey = randomBytes(32);
  const masterKeyFile = join(workDir, 'master.key');
  writeFileSync(masterKeyFile, `${masterKey.toString('hex')}\n`, { mode: 0o600 });
  return { masterKey, masterKeyFile };
}

/** The versions (name → hashes) and heads of a backup file, read with the master key. */
export async function backupContents(path: string, masterKey: Buffer) {
  const versions = new Set<string>();
  const heads = new Map<string, string>();
  for await (const item of readBackupFile(path, masterKey)) {
    if (item.type === 'version') versions.add(`${item.record.name}@${item.record.hash}`);
    if (item.type === 'head') heads.set(item.name, item.hash);
  }
  return { versions, heads };
}

export async function storeItemCount(location: StoreLocation, masterKey: Buffer): Promise<number> {
  const store = await openStore({ location, masterKey });
  try {
    let n = 0;
    for await (const _ of store.dump()) n++;
    return n;
  } finally {
    await store.close();
  }
}

export interface Ack {
  writer: number;
  name: string;
  hash: string;
  /** When the test saw the CAS's 201/200: the write was committed before. */
  at: number;
}

/** A client of the CAS as a user's tool is: its own TLS identity, trusting the CAS's CA only. */
export function client(cas: CasProcess, me: Identity = ephemeral(), localAddress?: string) {
  const connect = { ca: readFileSync(cas.caFile, 'utf8'), cert: me.certPem, key: me.keyPem };
  const agent = new Agent({ connect, ...(localAddress ? { localAddress } : {}) });
  const call = async (path: string, body?: string): Promise<{ status: number; json: TestJson }> => {
    const res = await request(`${cas.url}${path}`, { method: body ? 'POST' : 'GET', body, dispatcher: agent });
    return { status: res.statusCode, json: (await res.body.json()) as TestJson };
  };
  return { call, close: () => agent.close() };
}

/**
 * Until `stop()`: sessions created and each updated a few times, every acknowledged version recorded with the
 * time its answer arrived. Each writer is its own client address (the CAS allows one upload in progress per
 * address) and retries a 429 as a client should; any other refusal ends it, and `stop()` reports it.
 */
export function writer(cas: CasProcess, id: number, me: Identity, acks: Ack[]) {
  const c = client(cas, me, `127.0.0.${10 + id}`);
  let running = true;
  const write = async (name: string, text: string): Promise<string> => {
    for (;;) {
      const r = await c.call('/v1/sessions', text);
      if (r.status === 201 || r.status === 200) return r.json.hash as string;
      if (r.status !== 429) throw new Error(`write ${name}: ${r.status} ${JSON.stringify(r.json)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const name = `backup-w${id}-${n}`;
      let predecessor: string | undefined;
      for (let v = 0; v < 3 && running; v++) {
        const text = [`name: ${name}`, 'version: "0.3"', ...(predecessor ? [`predecessor: ${predecessor}`] : [])];
        text.push('secrets:', `  - {name: pw${v}, kind: ascii, size: 16}`, '');
        predecessor = await write(name, text.join('\n'));
        acks.push({ writer: id, name, hash: predecessor, at: Date.now() });
      }
    }
  })().then(
    () => undefined,
    (err: Error) => err,
  );
  return {
    /** Ends the loop; the error that ended it early, if one did. */
    stop: async (): Promise<Error | undefined> => {
      running = false;
      const failed = await loop;
      await c.close();
      return failed;
    },
  };
}
