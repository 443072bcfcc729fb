import { chainEntries, type AuditSigner } from '../audit/chain.js';
import { AuditError } from '../audit/errors.js';
import type { AuditEntry, AuditEvent, AuditHead, CasAuditLog, EntryMaker } from '../audit/types.js';
import { auditEventSchema } from '../contract/audit.js';
import { generatePrivateKey, issueCertificate, pemEncode, privateKeyObject } from '../secrets/index.js';
import { fingerprintOf, loadOrCreateCa } from './identity.js';
import type { Store } from './store/index.js';

/** README "Audit log", Limits. */
export const AUDIT_LIMITS = {
  /**
   * Entries one transaction appends at most: they are signed inside it, on the event loop (≈ 50–90 µs each here),
   * so a batch holds the loop ≈ 10 ms at most; larger batches gain little once a commit is shared by 128.
   */
  batch: 128,
  /** Events waiting for a transaction at most; past it `record` refuses (AUDIT_QUEUE_FULL), it never buffers. */
  queue: 10_000,
  /** How long a failed commit keeps the CAS unready (/readyz) unless a later one succeeds first. */
  unreadyMs: 30_000,
};

/** Why the log cannot take entries now, for readiness; undefined when it can (or is no GroupCommitLog). */
export function auditProblemOf(log: unknown): string | undefined {
  return log instanceof GroupCommitLog ? log.problem() : undefined;
}

const AUDIT_KEY = 'identity/audit';
const YEAR_MS = 365 * 24 * 3600 * 1000;

/** The audit key as the CAS holds it: the signer, its certificate, and whether this call made it. */
export interface AuditKey {
  signer: AuditSigner;
  certPem: string;
  /** SHA-256 (hex) of the CA certificate's DER: what an export's header names. */
  caFingerprint: string;
  created: boolean;
}

/**
 * The CAS's audit log on its store. The audit key is made once per store (P-256, a certificate from the CAS's CA,
 * CN "veil-cas audit", keyUsage digitalSignature), kept as one sealed blob put only if absent, so replicas
 * starting at once on one database sign with one key; `key.created` is recorded by the one that made it.
 */
export async function openAuditLog(store: Store, now: () => Date): Promise<CasAuditLog> {
  // The audit key needs the CA: a store's first start makes the CA here, before any log exists to record it.
  let caMade: string | undefined;
  const key = await loadAuditKey(store, now(), (fingerprint) => {
    caMade = fingerprint;
  });
  const log = new GroupCommitLog(store, key, now);
  if (caMade) await log.record({ type: 'key.created', key: 'ca', fingerprint: caMade });
  if (key.created) await log.record({ type: 'key.created', key: 'audit', fingerprint: key.signer.key });
  return log;
}

export async function loadAuditKey(
  store: Store,
  now: Date,
  caCreated?: (fingerprint: string) => void,
): Promise<AuditKey> {
  const ca = await loadOrCreateCa(store, now, async (fingerprint) => caCreated?.(fingerprint));
  const made = (await store.getBlob(AUDIT_KEY)) ? undefined : newAuditKey(ca, now);
  const blob = made ? await store.putBlobIfAbsent(AUDIT_KEY, made) : (await store.getBlob(AUDIT_KEY))!;
  const { key, cert } = JSON.parse(blob.toString('utf8')) as { key: string; cert: string };
  const certDer = Buffer.from(cert, 'base64');
  return {
    signer: { key: fingerprintOf(certDer), privateKey: privateKeyObject(Buffer.from(key, 'base64')) },
    certPem: pemEncode('CERTIFICATE', certDer),
    caFingerprint: fingerprintOf(ca.certDer),
    created: made?.equals(blob) === true,
  };
}

function newAuditKey(ca: Awaited<ReturnType<typeof loadOrCreateCa>>, now: Date): Buffer {
  const key = generatePrivateKey('P-256');
  const cert = issueCertificate({
    subjectKey: key,
    issuer: { certDer: ca.certDer, key: ca.key },
    commonName: 'veil-cas audit',
    isCa: false,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 20 * YEAR_MS),
  });
  return Buffer.from(JSON.stringify({ key: key.pkcs8.toString('base64'), cert: cert.toString('base64') }));
}

interface Pending {
  event: AuditEvent;
  resolve: (entry: AuditEntry) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: one transaction at a time; events recorded while it is in flight go into the next one (up to
 * AUDIT_LIMITS.batch), and each caller's promise resolves once the transaction holding its entry committed —
 * durable as the store's commit is (README "Audit log", durability). A failed transaction rejects its callers,
 * who fail closed; nothing is retried behind their back. A write with its own entry (withEntry) is one of these
 * transactions too: it waits for the one in flight and holds the next batch until it is done, so this process
 * appends to the chain's one tail from one transaction at a time.
 */
class GroupCommitLog implements CasAuditLog {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** The last transaction on the tail (a batch or a withEntry write), settled or not: the next one waits for it. */
  private tail: Promise<void> = Promise.resolve();
  /** withEntry writes waiting for the tail: they count against AUDIT_LIMITS.queue as queued events do. */
  private writes = 0;
  private closed = false;
  private failedAt: number | undefined;

  constructor(
    private readonly store: Store,
    private readonly key: AuditKey,
    private readonly now: () => Date,
  ) {}

  get signer(): AuditSigner {
    return this.key.signer;
  }

  record(event: AuditEvent): Promise<AuditEntry> {
    let parsed: AuditEvent;
    try {
      parsed = this.admit(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ event: parsed, resolve, reject });
      this.flushing ??= this.drain();
    });
  }

  async withEntry<T>(event: AuditEvent, write: (make: EntryMaker) => Promise<T>): Promise<T> {
    const parsed = this.admit(event);
    this.writes++;
    return this.onTail(() => {
      this.writes--;
      return write((head) => this.sign(head, [parsed]));
    });
  }

  /** The checks before an event waits for a transaction: open, room in the queue, the event fits the schema. */
  private admit(event: AuditEvent): AuditEvent {
    if (this.closed) throw new AuditError('AUDIT_CLOSED', 'the audit log is closed');
    if (this.queue.length + this.writes >= AUDIT_LIMITS.queue) {
      throw new AuditError('AUDIT_QUEUE_FULL', `${AUDIT_LIMITS.queue} audit events already wait for the store`);
    }
    const parsed = auditEventSchema.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.map(String).join('.') || '(root)';
      throw new AuditError('AUDIT_FORMAT', `the ${event.type} event does not fit the audit schema at ${where}`, {
        hint: 'a bug in the caller: events are validated before they are signed',
      });
    }
    return parsed.data;
  }

  /** Runs `fn` once every transaction before it on the tail settled; the next waits for this one. */
  private onTail<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Called inside the store's transaction, with the tail locked: the time is taken there, so it follows seq. */
  private sign(head: AuditHead, events: readonly AuditEvent[]): AuditEntry[] {
    return chainEntries(head, events, this.now(), this.key.signer);
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Taken once the tail is free: events recorded meanwhile join this batch.
        await this.onTail(() => this.commit(this.queue.splice(0, AUDIT_LIMITS.batch)));
        // Callers resolved; a long queue still lets other work run between transactions.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    if (batch.length === 0) return;
    const events = batch.map((p) => p.event);
    try {
      const entries = await this.store.appendAudit((head) => this.sign(head, events));
      this.failedAt = undefined;
      for (const [i, p] of batch.entries()) p.resolve(entries[i]!);
    } catch (err) {
      this.failedAt = this.now().getTime();
      const failure =
        err instanceof AuditError
          ? err
          : new AuditError('AUDIT_STORE', `cannot append ${batch.length} audit entries: ${(err as Error).message}`, {
              cause: err,
            });
      for (const p of batch) p.reject(failure);
    }
  }

  problem(): string | undefined {
    if (this.queue.length >= AUDIT_LIMITS.queue) return `${AUDIT_LIMITS.queue} audit events wait for the store`;
    const failed = this.failedAt;
    if (failed !== undefined && this.now().getTime() - failed < AUDIT_LIMITS.unreadyMs) {
      return 'its last commit to the store failed';
    }
    return undefined;
  }

  read(after: number, limit: number): Promise<AuditEntry[]> {
    return this.store.readAudit(after, limit);
  }

  head(): Promise<AuditHead> {
    return this.store.auditHead();
  }

  async certificates(): Promise<string[]> {
    return [this.key.certPem];
  }

  /**
   * Entries already queued (and writes waiting with theirs) are still written; new ones are refused. The store
   * stays open (its owner closes it).
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.tail;
  }
}
