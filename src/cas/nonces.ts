import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CasError } from './errors.js';

export interface NonceLimits {
  /** How long a nonce is good for. */
  ttlMs: number;
  /** Spent, unexpired nonces remembered for one client key; past it that key gets 429 until some expire. */
  perClient: number;
  /** Spent, unexpired nonces remembered in all; past it every key gets 429 until some expire. */
  max: number;
  /**
   * Presentations whose tag does not verify for the presenting key (junk, or another key's nonce), remembered
   * apart from the spent nonces; past it the oldest is forgotten, never refused.
   */
  presented: number;
}

export const DEFAULT_NONCE_LIMITS: NonceLimits = { ttlMs: 60_000, perClient: 16, max: 100_000, presented: 100_000 };
const LABEL = Buffer.from('veil-attestation-nonce-v1', 'ascii');

/**
 * Attestation nonces that cost the CAS nothing to issue: 32 bytes = expiry (8, ms, big-endian) ‖ random (8) ‖
 * HMAC-SHA256(secret of this CAS process, label ‖ expiry ‖ random ‖ the connection key's hash), first 16 bytes.
 * Nothing is stored at issue, so an outstanding nonce occupies nothing another client could flush or fill.
 * A nonce is good only for the key it was issued to and until it expires; once presented it is remembered
 * until its expiry so that it cannot be used twice.
 *
 * The used-set is the only state, and it is never trimmed early: forgetting an unexpired spent nonce would
 * let it be replayed. Instead it is capped per client key (so one key cannot take it all) and in all, and
 * a client over a cap is refused with 429 CAS_BUSY — at issue (its nonce could not be spent) and when it
 * presents one (which then stays unspent, so the same nonce may be retried once there is room).
 */
export class NonceStore {
  private readonly secret = randomBytes(32);
  /** Spent nonce → expiry and the key it was issued to; insertion order is nearly expiry order. */
  private readonly used = new Map<string, { expires: number; keyHash: string }>();
  private readonly perKey = new Map<string, number>();
  /**
   * Nonces presented from a key whose tag does not verify → expiry. They are burned (the owner cannot use one
   * afterwards) but kept apart: they cost the presenter nothing (any self-signed key will do), so counting them
   * against the spent set's caps would let junk fill it and get honest runtimes 429. Evicting the oldest when
   * full is harmless: it only lets a nonce's real owner spend it once after all (then it is in `used`), and no
   * genuine spend is ever forgotten early, so no replay is opened.
   */
  private readonly burned = new Map<string, number>();
  private readonly limits: NonceLimits;

  constructor(
    private readonly now: () => Date,
    limits: Partial<NonceLimits> = {},
  ) {
    this.limits = { ...DEFAULT_NONCE_LIMITS, ...limits };
  }

  issue(keyHash: string): Buffer {
    const now = this.now().getTime();
    this.prune(now);
    this.checkRoom(keyHash);
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(BigInt(now + this.limits.ttlMs), 0);
    randomBytes(8).copy(head, 8);
    return Buffer.concat([head, this.tag(head, keyHash)]);
  }

  /**
   * A presented nonce is spent whatever the outcome, so a failed attempt cannot be retried with it — also
   * one made from another key, whose tag cannot be checked: then its expiry field is the presenter's word,
   * so it is remembered one TTL at most, among the burned ones. Only a refusal for want of room (429,
   * thrown) leaves a genuine nonce unspent.
   */
  consume(nonceHex: string, keyHash: string): 'ok' | 'unknown' | 'expired' | 'used' {
    const nonce = /^[0-9a-f]{64}$/.test(nonceHex) ? Buffer.from(nonceHex, 'hex') : undefined;
    if (!nonce) return 'unknown';
    const genuine = timingSafeEqual(nonce.subarray(16), this.tag(nonce.subarray(0, 16), keyHash));
    const expires = Number(nonce.readBigUInt64BE(0));
    const now = this.now().getTime();
    if (expires < now) return genuine ? 'expired' : 'unknown';
    const spent = this.used.has(nonceHex) || this.burned.has(nonceHex);
    if (!genuine) {
      if (!spent) this.burn(nonceHex, Math.min(expires, now + this.limits.ttlMs), now);
      return 'unknown';
    }
    if (spent) return 'used';
    this.prune(now);
    this.checkRoom(keyHash);
    this.used.set(nonceHex, { expires: Math.min(expires, now + this.limits.ttlMs), keyHash });
    this.perKey.set(keyHash, (this.perKey.get(keyHash) ?? 0) + 1);
    return 'ok';
  }

  private burn(nonceHex: string, expires: number, now: number): void {
    for (const [nonce, at] of this.burned) {
      if (at >= now && this.burned.size < this.limits.presented) break;
      this.burned.delete(nonce);
    }
    this.burned.set(nonceHex, expires);
  }

  /** Spent nonces remembered now (for tests and metrics); burned presentations are not counted. */
  get size(): number {
    return this.used.size;
  }

  /** Presentations from the wrong key remembered now (for tests and metrics). */
  get burnedSize(): number {
    return this.burned.size;
  }

  private tag(head: Buffer, keyHash: string): Buffer {
    return createHmac('sha256', this.secret).update(LABEL).update(head).update(keyHash).digest().subarray(0, 16);
  }

  private checkRoom(keyHash: string): void {
    if ((this.perKey.get(keyHash) ?? 0) >= this.limits.perClient) {
      const within = `within the last ${this.limits.ttlMs / 1000} s`;
      throw busy(`this client key has ${this.limits.perClient} attestation nonces spent ${within}`);
    }
    if (this.used.size >= this.limits.max) {
      throw busy(`the CAS remembers ${this.limits.max} spent attestation nonces, its limit, until they expire`);
    }
  }

  /** Drops expired entries from the front; one stuck behind a later expiry goes when that one does. */
  private prune(now: number): void {
    for (const [nonce, entry] of this.used) {
      if (entry.expires >= now) break;
      this.used.delete(nonce);
      const left = (this.perKey.get(entry.keyHash) ?? 1) - 1;
      if (left <= 0) this.perKey.delete(entry.keyHash);
      else this.perKey.set(entry.keyHash, left);
    }
  }
}

function busy(message: string): CasError {
  return new CasError('CAS_BUSY', message, {
    hint: 'retry after a minute, when they expire; a runtime needs one nonce per start',
  });
}
