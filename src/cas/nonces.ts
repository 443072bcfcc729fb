import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Used nonces remembered (until they expire) to refuse a second use; past this the oldest is forgotten. */
export const USED_NONCES_KEPT = 100_000;
const LABEL = Buffer.from('veil-attestation-nonce-v1', 'ascii');

/**
 * Attestation nonces that cost the CAS nothing to issue: 32 bytes = expiry (8, ms, big-endian) ‖ random (8) ‖
 * HMAC-SHA256(secret of this CAS process, label ‖ expiry ‖ random ‖ the connection key's hash), first 16 bytes.
 * Nothing is stored at issue, so no client — however many keys it makes — can fill a store and stall the
 * others. A nonce is good only for the key it was issued to and until it expires; once presented it is
 * remembered until its expiry so that it cannot be used twice. Forgetting a used nonce early (past
 * USED_NONCES_KEPT) would only let its own key present it again — and the evidence binds that key too.
 */
export class NonceStore {
  private readonly secret = randomBytes(32);
  private readonly used = new Map<string, number>();

  constructor(private readonly now: () => Date, private readonly ttlMs = 60_000, private readonly kept = USED_NONCES_KEPT) {}

  issue(keyHash: string): Buffer {
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(BigInt(this.now().getTime() + this.ttlMs), 0);
    randomBytes(8).copy(head, 8);
    return Buffer.concat([head, this.tag(head, keyHash)]);
  }

  /**
   * A presented nonce is spent whatever the outcome, so a failed attempt cannot be retried with it — also
   * one made from another key, whose tag cannot be checked: then its expiry field is the presenter's word,
   * so it is remembered one TTL at most.
   */
  consume(nonceHex: string, keyHash: string): 'ok' | 'unknown' | 'expired' | 'used' {
    const nonce = /^[0-9a-f]{64}$/.test(nonceHex) ? Buffer.from(nonceHex, 'hex') : undefined;
    if (!nonce) return 'unknown';
    const genuine = timingSafeEqual(nonce.subarray(16), this.tag(nonce.subarray(0, 16), keyHash));
    const expires = Number(nonce.readBigUInt64BE(0));
    const now = this.now().getTime();
    if (expires < now) return genuine ? 'expired' : 'unknown';
    if (this.used.has(nonceHex)) return genuine ? 'used' : 'unknown';
    this.remember(nonceHex, Math.min(expires, now + this.ttlMs), now);
    return genuine ? 'ok' : 'unknown';
  }

  private tag(head: Buffer, keyHash: string): Buffer {
    return createHmac('sha256', this.secret).update(LABEL).update(head).update(keyHash).digest().subarray(0, 16);
  }

  private remember(nonceHex: string, expires: number, now: number): void {
    // Insertion order is nearly expiry order (one TTL for all): drop expired entries from the front.
    for (const [old, until] of this.used) {
      if (until >= now && this.used.size < this.kept) break;
      this.used.delete(old);
    }
    this.used.set(nonceHex, expires);
  }
}
