import { randomBytes } from 'node:crypto';
import { CasError } from './errors.js';

/** Outstanding nonces one connection key may hold; a runtime needs one per attestation. */
export const NONCES_PER_KEY = 8;
/** Outstanding nonces in all. */
export const NONCES_TOTAL = 10_000;

/**
 * Single-use attestation nonces, each issued to one connection key and valid for a short time. Reuse,
 * expiry and use from another key are all refused: evidence cannot be replayed. One key's requests never
 * evict another key's nonce: past its own limit a key loses its own oldest, and when the store is full new
 * nonces are refused (429) until old ones expire or are used.
 */
export class NonceStore {
  private readonly issued = new Map<string, { keyHash: string; expires: number }>();
  private readonly byKey = new Map<string, string[]>();

  constructor(
    private readonly now: () => Date,
    private readonly ttlMs = 60_000,
    private readonly limit = NONCES_TOTAL,
    private readonly perKey = NONCES_PER_KEY,
  ) {}

  issue(keyHash: string): Buffer {
    this.sweep();
    const own = this.byKey.get(keyHash) ?? [];
    if (own.length >= this.perKey) this.forget(own[0]!);
    else if (this.issued.size >= this.limit) {
      throw new CasError('CAS_BUSY', 'the CAS has issued as many attestation nonces as it keeps; none is free', { hint: 'retry in a few seconds' });
    }
    const nonce = randomBytes(32);
    const hex = nonce.toString('hex');
    this.issued.set(hex, { keyHash, expires: this.now().getTime() + this.ttlMs });
    this.byKey.set(keyHash, [...(this.byKey.get(keyHash) ?? []), hex]);
    return nonce;
  }

  /** Removes the nonce whatever the outcome, so a failed attempt cannot be retried with it. */
  consume(nonceHex: string, keyHash: string): 'ok' | 'unknown' | 'expired' | 'other-key' {
    const entry = this.issued.get(nonceHex);
    if (!entry) return 'unknown';
    this.forget(nonceHex);
    if (entry.expires < this.now().getTime()) return 'expired';
    return entry.keyHash === keyHash ? 'ok' : 'other-key';
  }

  private forget(nonceHex: string): void {
    const entry = this.issued.get(nonceHex);
    if (!entry) return;
    this.issued.delete(nonceHex);
    const rest = (this.byKey.get(entry.keyHash) ?? []).filter((n) => n !== nonceHex);
    if (rest.length === 0) this.byKey.delete(entry.keyHash);
    else this.byKey.set(entry.keyHash, rest);
  }

  private sweep(): void {
    const now = this.now().getTime();
    for (const [nonce, entry] of this.issued) if (entry.expires < now) this.forget(nonce);
  }
}
