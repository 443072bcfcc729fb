import type { X509Certificate } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { parseCertificates, verifyChain, type PinnedRoot } from '../pki.js';
import type { ChainEntry } from '../types.js';
import { Lru } from '../../lru.js';
import { digestOf } from './digest.js';

/**
 * Chains to a pinned root (in production always INTEL_SGX_ROOT, which verify.ts passes), verified once per exact
 * byte string and root: the cache is keyed by the root's key and certificate too, so a chain verified against
 * another root (a test hierarchy) is never found by a lookup for the Intel root. The signatures and structure
 * do not depend on the time, so they are checked at an instant inside every certificate's window and cached;
 * the validity windows are checked against the caller's time on every use.
 */

export interface VerifiedChain {
  /** Leaf first, as given (an included root last). */
  certs: X509Certificate[];
  /** Leaf first, the pinned root last, as verifyChain reports them. */
  entries: ChainEntry[];
  /** The certificates whose windows matter (the given ones and the pinned root), with parsed dates. */
  windows: { name: string; from: Date; to: Date }[];
}

const CACHE_SIZE = 256;
const cache = new Lru<VerifiedChain>(CACHE_SIZE);

export function clearChainCache(): void {
  cache.clear();
}

/**
 * `canonical`: the bytes must be exactly the PEM encoding Intel's tools write (64-column base64, LF), then
 * optional NUL padding. Used for chains inside quotes, where every byte is meant to be checked: otherwise a
 * changed line break or an unused base64 bit would pass as the same certificate.
 */
export function verifiedChain(
  bytes: Buffer,
  check: string,
  opts: { canonical: boolean },
  root: PinnedRoot,
): VerifiedChain {
  const key = digestOf(opts.canonical ? 'canonical' : 'lenient', rootKey(root), bytes);
  const hit = cache.get(key);
  if (hit) return hit;
  const certs = parseCertificates(bytes, check);
  if (opts.canonical) checkCanonicalPem(bytes, certs, check);
  const windows = [...certs, root.certificate].map((c) => ({
    name: cnOf(c),
    from: new Date(c.validFrom),
    to: new Date(c.validTo),
  }));
  const latestStart = new Date(Math.max(...windows.map((w) => w.from.getTime())));
  const earliestEnd = Math.min(...windows.map((w) => w.to.getTime()));
  // No instant lies in every window: let verifyChain report what it finds at that instant (it will throw).
  const at = latestStart.getTime() <= earliestEnd ? latestStart : new Date(earliestEnd);
  const entries = verifyChain(certs, root, at, check);
  const top = certs[certs.length - 1];
  // verifyChain compares an included root by key only and then sets it aside: insist it is itself intact.
  if (top && certs.length > 1 && top.checkIssued(top) && !top.verify(top.publicKey)) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `the included root ${cnOf(top)} does not carry a valid self-signature`,
      { check },
    );
  }
  const result = { certs, entries, windows };
  cache.set(key, result);
  return result;
}

/** A cache key part naming the root: its pinned key and its exact certificate (whose window is checked). */
export function rootKey(root: PinnedRoot): string {
  return `${root.spkiSha256}:${root.certificate.fingerprint256}`;
}

/** The windows checked at `now`, leaf first, with the messages pki.checkValidity gives. */
export function checkWindows(chain: VerifiedChain, now: Date, check: string): void {
  const t = now.getTime();
  for (const w of chain.windows) {
    if (t < w.from.getTime()) {
      throw new AttestationError(
        'ATTESTATION_EXPIRED',
        `${w.name} is not valid before ${w.from.toISOString()} (verification time ${now.toISOString()})`,
        { check },
      );
    }
    if (t > w.to.getTime()) {
      throw new AttestationError(
        'ATTESTATION_EXPIRED',
        `${w.name} expired at ${w.to.toISOString()} (verification time ${now.toISOString()})`,
        {
          check,
          hint: 'fetch fresh certificates or verify at a time inside their validity (--at)',
        },
      );
    }
  }
}

export function cnOf(cert: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return `'${cn ?? cert.subject.replace(/\n/g, ', ')}'`;
}

export function toPem(der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

function checkCanonicalPem(bytes: Buffer, certs: X509Certificate[], check: string): void {
  const expected = Buffer.from(certs.map((c) => toPem(c.raw)).join(''), 'latin1');
  const head = bytes.subarray(0, expected.length);
  const rest = bytes.subarray(expected.length);
  if (!head.equals(expected) || rest.some((b) => b !== 0)) {
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      'the certification data is not a canonical PEM chain (64-column base64, LF, then NUL padding only)',
      {
        check,
      },
    );
  }
}
