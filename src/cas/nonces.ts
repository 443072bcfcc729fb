import { randomBytes } from 'node:crypto';

/**
 * Single-use attestation nonces, each issued to one connection key and valid for a short time. Reuse,
 * expiry and use from another key are all refused: evidence cannot be replayed.
 */
export class NonceStore {
  private readonly issued = new Map<string, { keyHash: string; expires: number }>();

  constructor(private readonly now: () => Date, private readonly ttlMs = 60_000, private readonly limit = 10_000) {}

  issue(keyHash: string): Buffer {
    this.sweep();
    if (this.issued.size >= this.limit) this.issued.delete(this.issued.keys().next().value!);
    const nonce = randomBytes(32);
    this.issued.set(nonce.toString('hex'), { keyHash, expires: this.now().getTime() + this.ttlMs });
    return nonce;
  }

  /** Removes the nonce whatever the outcome, so a failed attempt cannot be retried with it. */
  consume(nonceHex: string, keyHash: string): 'ok' | 'unknown' | 'expired' | 'other-key' {
    const entry = this.issued.get(nonceHex);
    this.issued.delete(nonceHex);
    if (!entry) return 'unknown';
    if (entry.expires < this.now().getTime()) return 'expired';
    return entry.keyHash === keyHash ? 'ok' : 'other-key';
  }

  private sweep(): void {
    const now = this.now().getTime();
    for (const [nonce, entry] of this.issued) if (entry.expires < now) this.issued.delete(nonce);
  }
}
