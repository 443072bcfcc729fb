import type { FastifyRequest } from 'fastify';
import { isIPv6, type Server, type Socket } from 'node:net';
import { CasError } from './errors.js';
import { LocalLedger, type SlotLedger } from './ledger.js';

/**
 * What one client may hold of the CAS's connections and time (README "Limits").
 * Every value is a startCas option and a `veil cas serve` flag.
 */
export interface ConnectionLimits {
  /** The TLS handshake must finish within this (tls handshakeTimeout). */
  handshakeTimeoutMs: number;
  /** All request headers must arrive within this, from the first byte of the request (headersTimeout). */
  headersTimeoutMs: number;
  /** The whole request, headers and body, must arrive within this (requestTimeout). */
  requestTimeoutMs: number;
  /** A kept-alive connection with no request in flight is closed after this (keepAliveTimeout). */
  keepAliveTimeoutMs: number;
  /** A connection on which nothing moves for this long is closed, whatever its state (socket timeout). */
  idleTimeoutMs: number;
  /** Open connections from one client address (IPv6: per /64); the next one is closed at once. */
  maxConnectionsPerAddress: number;
  /** Open connections in all; the next one is closed at once. */
  maxConnections: number;
  /**
   * Session uploads in progress from one address; the next gets 429 at once. A write runs on the event loop
   * (parse, keys, certificates, seal), so this bounds how much of it queued uploads of one client can hold.
   */
  maxWritesPerAddress: number;
  /** Session uploads in progress in all: bounds what clients from many addresses together make others wait. */
  maxWrites: number;
  /**
   * Time one address may have uploads in progress, per second on average (bursts up to 4 s' worth): its
   * share of the event loop. Past it, its uploads get 429 until the budget refills.
   */
  writeMsPerSecondPerAddress: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  maxConnectionsPerAddress: 64,
  maxConnections: 1024,
  maxWritesPerAddress: 1,
  maxWrites: 4,
  writeMsPerSecondPerAddress: 250,
};

/** The limits with `given` overriding the defaults; a non-positive or non-integer value is refused. */
export function connectionLimits(given: Partial<ConnectionLimits> | undefined): ConnectionLimits {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new CasError('CAS_BAD_REQUEST', `connection limit ${name} must be a positive integer, not ${value}`, {
        hint: 'give milliseconds for timeouts and counts for connection caps',
      });
    }
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    const what = `the headers timeout (${limits.headersTimeoutMs} ms)`;
    throw new CasError('CAS_BAD_REQUEST', `${what} exceeds the request timeout (${limits.requestTimeoutMs} ms)`, {
      hint: 'the headers are part of the request: make the headers timeout at most the request timeout',
    });
  }
  return limits;
}

/** Node checks headersTimeout and requestTimeout on a timer; this keeps the check's slack a fraction of them. */
export function checkingIntervalMs(limits: ConnectionLimits): number {
  return Math.max(10, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10));
}

/**
 * Counts TCP connections as they arrive — before the TLS handshake, which is where a slow client would
 * otherwise sit — and destroys those over a cap at once, so one address cannot take every socket. The total is
 * this process's; the per-address count is the ledger's (cluster-wide with several workers). A decision that
 * arrives later (a worker asks the primary) lets the handshake start meanwhile, destroys the socket on no, and
 * gives back a yes whose socket closed while it was on the way.
 */
export function capConnections(
  server: Server,
  limits: Pick<ConnectionLimits, 'maxConnections' | 'maxConnectionsPerAddress'>,
  ledger: SlotLedger = new LocalLedger(),
): void {
  let total = 0;
  server.prependListener('connection', (socket: Socket) => {
    if (total >= limits.maxConnections) {
      socket.destroy();
      return;
    }
    const address = addressKey(socket.remoteAddress);
    const taken = ledger.take('connection', address, limits.maxConnectionsPerAddress);
    if (taken === false) {
      socket.destroy();
      return;
    }
    total++;
    let closed = false;
    let granted = taken === true;
    socket.once('close', () => {
      closed = true;
      total--;
      if (granted) ledger.give('connection', address);
    });
    if (taken === true) return;
    taken.then(
      (ok) => {
        if (!ok) socket.destroy();
        else if (closed) ledger.give('connection', address);
        else granted = true;
      },
      () => socket.destroy(),
    );
  });
}

/** IPv4 (also IPv4-mapped IPv6) by address; IPv6 by its /64, which one client usually holds whole. */
export function addressKey(remote: string | undefined): string {
  if (!remote) return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return mapped[1]!;
  if (!isIPv6(remote)) return remote;
  return `${expandIPv6(remote).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...missing, ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}

/** Runs one session upload's work under the write limits (limitWrites). */
export type WriteGate = <T>(remoteAddress: string | undefined, work: () => Promise<T>) => Promise<T>;

const WRITE_ROUTES = new Set(['/v1/sessions', '/session', '/v1/encrypted_sessions']);

/**
 * An onRequest hook answering 429 before the body is read when the upload would be refused now anyway: a
 * flood of uploads then costs no body reading or validation. It takes no slot; `WriteGate` decides.
 */
export function earlyWriteRefusal(
  gate: WriteGate & { refusal(address: string): CasError | undefined },
): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    if ((request.method !== 'POST' && request.method !== 'PUT') || !WRITE_ROUTES.has(request.routeOptions.url ?? ''))
      return;
    const refused = gate.refusal(addressKey(request.socket.remoteAddress));
    if (refused) throw refused;
  };
}

/**
 * Refuses a session upload (429) when its address, or the CAS in all, already has its cap in progress, or when
 * the address has used its time. The route calls it once the body is in, so a slow sender holds a connection
 * (bounded per address and by the timeouts), never an upload slot. The slot is held, and the time charged,
 * until the work settles: a client hanging up does not stop key generation, so it must not free the slot.
 * This process's own counts answer the early refusal at once; the ledger's per-address count (cluster-wide
 * with several workers) decides before the work starts.
 */
export function limitWrites(
  limits: Pick<ConnectionLimits, 'maxWrites' | 'maxWritesPerAddress' | 'writeMsPerSecondPerAddress'>,
  ledger: SlotLedger = new LocalLedger(),
): WriteGate & { refusal(address: string): CasError | undefined } {
  const inProgress = new Map<string, number>();
  const budget = new WriteBudget(limits.writeMsPerSecondPerAddress);
  let total = 0;
  const refusal = (address: string): CasError | undefined => {
    const mine = inProgress.get(address) ?? 0;
    if (mine >= limits.maxWritesPerAddress) {
      return busyWriting(`this client address already has ${mine} session uploads in progress`);
    }
    if (total >= limits.maxWrites) return busyWriting(`the CAS already has ${total} session uploads in progress`);
    const waitMs = budget.waitMs(address);
    if (waitMs <= 0) return undefined;
    const share = `${limits.writeMsPerSecondPerAddress} ms per second`;
    return busyWriting(
      `this client address has used its upload time (${share}); room again in ${Math.ceil(waitMs)} ms`,
    );
  };
  const refuseOrTake = (address: string): void => {
    const refused = refusal(address);
    if (refused) throw refused;
    total++;
    inProgress.set(address, (inProgress.get(address) ?? 0) + 1);
  };
  const release = (address: string): void => {
    total--;
    const left = (inProgress.get(address) ?? 1) - 1;
    if (left <= 0) inProgress.delete(address);
    else inProgress.set(address, left);
  };
  const gate: WriteGate = async (remoteAddress, work) => {
    const address = addressKey(remoteAddress);
    refuseOrTake(address);
    const taken = ledger.take('write', address, limits.maxWritesPerAddress);
    if (!(taken === true || (taken !== false && (await taken.catch(() => false))))) {
      release(address);
      throw busyWriting(
        `this client address already has ${limits.maxWritesPerAddress} session uploads in progress on this CAS's workers`,
      );
    }
    const started = performance.now();
    try {
      return await work();
    } finally {
      budget.charge(address, performance.now() - started);
      release(address);
      ledger.give('write', address);
    }
  };
  return Object.assign(gate, { refusal });
}

/** A token bucket per address, in milliseconds of uploads in progress; full buckets are forgotten. */
export class WriteBudget {
  private readonly buckets = new Map<string, { ms: number; at: number }>();
  private readonly burstMs: number;

  constructor(
    private readonly msPerSecond: number,
    private readonly now = () => performance.now(),
  ) {
    this.burstMs = msPerSecond * 4;
  }

  /** How long until the address has budget again (0: now). */
  waitMs(address: string): number {
    const ms = this.level(address);
    return ms > 0 ? 0 : (-ms / this.msPerSecond) * 1000 + 1;
  }

  charge(address: string, ms: number): void {
    this.buckets.set(address, { ms: this.level(address) - ms, at: this.now() });
    if (this.buckets.size > 4096) this.forgetFull();
  }

  private level(address: string): number {
    const bucket = this.buckets.get(address);
    if (!bucket) return this.burstMs;
    return Math.min(this.burstMs, bucket.ms + ((this.now() - bucket.at) * this.msPerSecond) / 1000);
  }

  private forgetFull(): void {
    for (const address of this.buckets.keys()) if (this.level(address) >= this.burstMs) this.buckets.delete(address);
  }
}

function busyWriting(message: string): CasError {
  return new CasError('CAS_BUSY', message, { hint: 'wait for the earlier uploads to be answered, then retry' });
}
