import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { auditEntrySchema, type AuditEntry } from '../../contract/index.js';
import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { chosenIdentity, pinnedCas, veilHome, writePrivate } from '../home.js';
import type { Io } from '../io.js';
import { defineCommand } from '../spec.js';
import { AUDIT_CAS } from './audit-options.js';

/** README "Audit log": how the follower waits, batches and backs off. */
export const FOLLOW_LIMITS = {
  /** Seconds each long poll asks the CAS to wait (the CAS may hold it less). */
  waitSeconds: 25,
  /** Entries per page, and so per webhook POST. */
  batch: 500,
  /** First retry delay after a failure, doubled up to maxBackoffMs. */
  backoffMs: 500,
  maxBackoffMs: 30_000,
  /** A webhook must answer a POST within this. */
  webhookTimeoutMs: 30_000,
} as const;

export const followCommand = defineCommand(
  {
    name: 'audit follow',
    usage: ['(--out FILE | --webhook URL) [--after SEQ] [--state FILE] [-c URL] [--identity DIR]'],
    summary: 'ships audit entries as they come: appended to FILE as JSON lines, or POSTed in batches; Ctrl-C stops',
    options: {
      ...AUDIT_CAS,
      out: { type: 'string', short: 'o', value: 'FILE', description: 'append entries to FILE (JSON lines, 0600)' },
      webhook: { type: 'string', value: 'URL', description: 'POST {"entries": [...]} batches to URL (http/https)' },
      after: {
        type: 'string',
        value: 'SEQ',
        description: 'start after this seq (default: where FILE or --state ends)',
      },
      state: { type: 'string', value: 'FILE', description: 'keeps the last shipped seq, to resume from after a stop' },
    },
  },
  async ({ values }, io) => {
    const sink = sinkOf(values.out, values.webhook);
    const client = new CasClient(pinnedCas(veilHome(io.env), values.cas), chosenIdentity(values.identity, io.env));
    const stop = new AbortController();
    void io.untilSignal().then(() => stop.abort());
    let after = startingPoint(values.after, values.out, values.state);
    let shipped = 0;
    try {
      for (let failures = 0; !stop.signal.aborted; ) {
        try {
          const page = await client.auditPage(after, FOLLOW_LIMITS.batch, FOLLOW_LIMITS.waitSeconds, stop.signal);
          if (page.entries.length > 0) await sink(page.entries, stop.signal);
          shipped += page.entries.length;
          after = page.next;
          if (values.state) writePrivate(values.state, `${after}\n`);
          failures = 0;
        } catch (err) {
          if (stop.signal.aborted) break;
          if (!retryable(err)) throw err;
          await backOff(io, err, failures++, stop.signal);
        }
      }
    } finally {
      await client.close();
    }
    io.out(`# shipped ${shipped} entries, resume after seq ${after}\n`);
    return 0;
  },
);

type Sink = (entries: AuditEntry[], signal: AbortSignal) => Promise<void>;

function sinkOf(out: string | undefined, webhook: string | undefined): Sink {
  if ((out === undefined) === (webhook === undefined)) {
    throw usage('give exactly one of --out FILE and --webhook URL', 'veil audit follow --cas URL --out audit.jsonl');
  }
  if (out !== undefined) return async (entries) => appendLines(out, entries);
  const url = parseWebhook(webhook as string);
  return (entries, signal) => postBatch(url, entries, signal);
}

/** One write and an fsync per batch: a batch counts as shipped only once it is on disk. */
function appendLines(path: string, entries: AuditEntry[]): void {
  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function parseWebhook(text: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw usage(`--webhook '${text}' is not an http(s) URL`, 'e.g. --webhook https://siem.example/ingest');
  }
  return url;
}

/** A batch is retried (with backoff) until the webhook takes it with a 2xx; a 4xx other than 408/429 stops. */
async function postBatch(url: URL, entries: AuditEntry[], signal: AbortSignal): Promise<void> {
  const timeout = FOLLOW_LIMITS.webhookTimeoutMs;
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ entries }),
    signal,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  }).catch((err: unknown) => {
    throw new WebhookRetry(`the webhook ${url.origin} cannot be reached (${(err as Error).message})`);
  });
  await res.body.dump();
  if (res.statusCode >= 200 && res.statusCode < 300) return;
  if (res.statusCode === 408 || res.statusCode === 429 || res.statusCode >= 500) {
    throw new WebhookRetry(`the webhook ${url.origin} answered ${res.statusCode}`);
  }
  throw new CliError('CLI_AUDIT_SHIP', `the webhook ${url.origin} refused a batch (HTTP ${res.statusCode})`, {
    hint: 'check the webhook URL and what it accepts; the follower resumes from the last shipped seq (--state)',
  });
}

class WebhookRetry extends Error {}

function retryable(err: unknown): boolean {
  if (err instanceof WebhookRetry) return true;
  if (!(err instanceof CliError)) return false;
  return err.code === 'CLI_CAS_UNREACHABLE' || /^CAS refused \((429|503) /.test(err.message);
}

async function backOff(io: Io, err: unknown, failures: number, signal: AbortSignal): Promise<void> {
  const base = Math.min(FOLLOW_LIMITS.maxBackoffMs, FOLLOW_LIMITS.backoffMs * 2 ** failures);
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  io.err(`[VEIL|WARN] ${(err as Error).message}; retrying in ${delay} ms\n`);
  await sleep(delay, undefined, { signal }).catch(() => undefined);
}

/** --after, else the last entry of --out, else --state, else the start of the log. */
function startingPoint(after: string | undefined, out: string | undefined, state: string | undefined): number {
  if (after !== undefined) {
    if (!/^\d{1,15}$/.test(after)) throw usage(`--after '${after}' is not a seq`, 'give a whole number, 0 for all');
    return Number(after);
  }
  if (out !== undefined && existsSync(out)) {
    const last = readFileSync(out, 'utf8').trimEnd().split('\n').at(-1);
    if (last) return lastSeqOf(out, last);
  }
  if (state !== undefined && existsSync(state)) {
    const text = readFileSync(state, 'utf8').trim();
    if (/^\d{1,15}$/.test(text)) return Number(text);
    throw usage(`--state ${state} holds no seq`, 'remove it to start from --after, or from the start of the log');
  }
  return 0;
}

function lastSeqOf(path: string, line: string): number {
  try {
    return auditEntrySchema.parse(JSON.parse(line)).seq;
  } catch (err) {
    throw new CliError('CLI_AUDIT_SHIP', `the last line of ${path} is not an audit entry`, {
      hint: 'follow into a new file, or give --after SEQ',
      cause: err,
    });
  }
}
