import type {
  AmdCollateral,
  AmdCollateralRequest,
  AmdSource,
  CollateralProvider,
  IntelCollateral,
  IntelCollateralRequest,
  IntelSource,
} from './types.js';

/**
 * Collateral from several sources, asked in order (e.g. a local directory before Intel PCS), behind a cache.
 * The cache holds answers for at most `maxAgeMs` — Intel's TCB info and CRLs change about monthly, and the
 * verifier checks every window against the verification time anyway, so the age bounds how late a newly
 * published revocation or TCB recovery is noticed. Failures are not cached: the next request asks again, and
 * meanwhile the last answer that did come is served.
 */
export interface CollateralOptions {
  intel?: IntelSource[];
  amd?: AmdSource[];
  /** How long an answer is reused (default 1 hour; 0 turns the cache off). */
  maxAgeMs?: number;
  /** At most this many answers are kept (default 256); the oldest goes first. */
  maxEntries?: number;
  now?: () => number;
}

export const DEFAULT_COLLATERAL_MAX_AGE_MS = 3600_000;
const DEFAULT_MAX_ENTRIES = 256;

export function collateralProvider(options: CollateralOptions): CollateralProvider {
  const cache = new AnswerCache(
    options.maxAgeMs ?? DEFAULT_COLLATERAL_MAX_AGE_MS,
    options.maxEntries ?? DEFAULT_MAX_ENTRIES,
    options.now ?? Date.now,
  );
  return {
    intel: (request: IntelCollateralRequest) =>
      cache.get(`intel:${request.tee}:${request.fmspc.toLowerCase()}:${request.ca}`, () =>
        firstOf(options.intel ?? [], request),
      ),
    amd: (request: AmdCollateralRequest) =>
      cache.get(`amd:${amdKey(request)}`, () => firstOf(options.amd ?? [], request)),
  };
}

function amdKey(r: AmdCollateralRequest): string {
  const t = r.tcb;
  return [
    r.product,
    r.signingKey,
    r.hwid?.toLowerCase() ?? '',
    t.bootloader,
    t.tee,
    t.snp,
    t.microcode,
    t.fmc ?? '',
  ].join(':');
}

async function firstOf<R, T>(
  sources: Array<(request: R) => Promise<T | undefined>>,
  request: R,
): Promise<T | undefined> {
  for (const source of sources) {
    const found = await source(request);
    if (found !== undefined) return found;
  }
  return undefined;
}

class AnswerCache {
  private readonly entries = new Map<
    string,
    { at: number; value: Promise<IntelCollateral | AmdCollateral | undefined> }
  >();

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  /** The last answer that came back, per key: served when a later refresh fails (stale-if-error). */
  private readonly lastGood = new Map<string, IntelCollateral | AmdCollateral>();

  get<T extends IntelCollateral | AmdCollateral>(
    key: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.maxAgeMs) return hit.value as Promise<T | undefined>;
    const value = this.withFallback(key, load);
    if (this.maxAgeMs <= 0) return value;
    this.entries.delete(key);
    this.entries.set(key, { at: this.now(), value });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    // Concurrent requests share one fetch; a failed one is forgotten so that the next request retries.
    value.then(
      (v) => (v === undefined ? this.entries.delete(key) : undefined),
      () => this.entries.delete(key),
    );
    return value;
  }

  /**
   * A PCS or KDS outage (or an attacker who got this CAS rate-limited) must not turn into refusals while the
   * last collateral is still good: its windows are checked by the verifier, so serving it late is safe.
   */
  private async withFallback<T extends IntelCollateral | AmdCollateral>(
    key: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    try {
      const value = await load();
      if (value !== undefined) {
        this.lastGood.delete(key);
        this.lastGood.set(key, value);
        if (this.lastGood.size > this.maxEntries) this.lastGood.delete(this.lastGood.keys().next().value!);
        return value;
      }
    } catch (err) {
      if (!this.lastGood.has(key)) throw err;
    }
    return this.lastGood.get(key) as T | undefined;
  }
}
