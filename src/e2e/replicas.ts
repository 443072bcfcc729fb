import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startCas, type CasProcess } from './harness.js';
import type { TestJson } from '../cas/testing.js';

/** CAS replicas on one PostgreSQL database, and clients that write through them as a load balancer's would. */

const WRITE_LIMITS = [
  '--max-writes',
  '16',
  '--max-writes-per-address',
  '16',
  '--write-ms-per-second-per-address',
  '1000',
];

export interface ReplicaSet {
  replicas: CasProcess[];
  stop(): Promise<void>;
}

/** `veil cas serve --store URL` n times, the password in PGPASSWORD as a Secret would pass it. */
export async function startReplicas(
  n: number,
  opts: { url: string; keyFile: string; dir: string; env: NodeJS.ProcessEnv },
): Promise<ReplicaSet> {
  // All the test's writers come from one address; behind a load balancer they would come from many.
  const args = ['--store', opts.url, '--master-key-file', opts.keyFile, ...WRITE_LIMITS];
  const replicas = await Promise.all(
    Array.from({ length: n }, (_, i) => startCas(join(opts.dir, `unused-${i}`), opts.dir, args, opts.env)),
  );
  return { replicas, stop: async () => void (await Promise.all(replicas.map((r) => r.stop()))) };
}

export interface Answer {
  status: number;
  json: TestJson;
}

/** A TLS client of the CAS (its CA only), with a client identity from PEM files. */
export class CasHttp {
  private readonly agent: Agent;

  constructor(caFile: string, identity: { cert: string; key: string }) {
    this.agent = new Agent({
      connect: { ca: readFileSync(caFile), cert: readFileSync(identity.cert), key: readFileSync(identity.key) },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  }

  async send(url: string, method: 'GET' | 'POST', body?: string): Promise<Answer> {
    const res = await request(url, { method, dispatcher: this.agent, ...(body === undefined ? {} : { body }) });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

export const sessionText = (name: string, value: string, predecessor?: string) =>
  `name: ${name}\nversion: "0.3"\n${predecessor ? `predecessor: ${predecessor}\n` : ''}` +
  `secrets:\n  - {name: v, kind: ascii, value: "${value}"}\n`;

export interface WriteCounts {
  acknowledged: Map<string, string>;
  retries: number;
  /** Creates whose answer was lost (connection broken, 503) and that a retry found done (409 exists). */
  unknownOutcome: number;
}

/**
 * Writers creating sessions until `until()` says stop, each on a replica in turn; a broken connection or a 503
 * sends the request to the next replica (`replicas()` is read each time: the set may change under them).
 * Only a 201 counts as acknowledged.
 */
export async function writeThrough(
  http: CasHttp,
  replicas: () => CasProcess[],
  opts: { writers: number; prefix: string; until: () => boolean },
): Promise<WriteCounts> {
  const counts: WriteCounts = { acknowledged: new Map(), retries: 0, unknownOutcome: 0 };
  const one = async (w: number) => {
    for (let n = 0; !opts.until(); n++) {
      const name = `${opts.prefix}-${w}-${n}`;
      await createWithRetry(http, replicas, name, w + n, counts);
    }
  };
  await Promise.all(Array.from({ length: opts.writers }, (_, w) => one(w)));
  return counts;
}

async function createWithRetry(
  http: CasHttp,
  replicas: () => CasProcess[],
  name: string,
  start: number,
  counts: WriteCounts,
): Promise<void> {
  let answerLost = false;
  for (let attempt = 0; attempt < 400; attempt++) {
    const set = replicas();
    const replica = set[(start + attempt) % set.length]!;
    try {
      const res = await http.send(`${replica.url}/v1/sessions`, 'POST', sessionText(name, name));
      if (res.status === 201) return void counts.acknowledged.set(name, res.json.hash);
      if (res.status === 409 && answerLost) return void counts.unknownOutcome++;
      if (res.status === 429) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      if (res.status !== 503) throw new Error(`unexpected ${res.status} for ${name}: ${JSON.stringify(res.json)}`);
    } catch (err) {
      if ((err as Error).message.startsWith('unexpected')) throw err;
    }
    answerLost = true;
    counts.retries++;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name}: no replica took it in 400 attempts`);
}

/** Acknowledged writes that a replica does not show with the acknowledged hash. */
export async function lostWrites(http: CasHttp, replica: CasProcess, acknowledged: Map<string, string>) {
  const lost: string[] = [];
  for (const [name, hash] of acknowledged) {
    const res = await http.send(`${replica.url}/v1/sessions/${name}`, 'GET');
    if (res.status !== 200 || res.json.hash !== hash) lost.push(name);
  }
  return lost;
}
