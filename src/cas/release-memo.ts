import { Lru } from '../lru.js';
import type { ServiceConfig } from './config.js';
import type { RemoteSecrets } from './remote-import.js';
import { renderRenewed, type RenewalOutcome } from './renewal.js';
import { readerState, type SessionReader } from './session-reader.js';
import type { CasContext } from './sessions.js';
import type { Store } from './store/index.js';

/**
 * The configurations attestations released, kept per exact input, so that the next attestation of the same
 * service renders nothing: rendering (placeholders, injection files, the certificates each uses and when they are
 * due) was a tenth of the CAS's JavaScript per attestation (README "Measured", bench:attest).
 *
 * What a release is rendered from is the state of the sessions its judgement read (`readerState`: names, version
 * hashes, renewal generations), fixed per entry, and the clock, which decides only when a certificate is due: an
 * entry is used only before the first certificate it uses falls due (`renewAt`), so the attestation that finds a
 * certificate due renders and renews as before. Not kept: releases that renewed or found anything due, and
 * releases with secrets from other CAS (fetched anew each time). Everything else of an attestation — nonce,
 * evidence, binding, platform, identity, the heads compared after rendering, the audit entry — runs every time:
 * the memo replaces rendering only, after the evidence was judged.
 *
 * Secrets in memory, as in the session cache (session-reader.ts): entries are filled only by accepted
 * attestations, and bounded by count and bytes (README "Limits").
 */
export const RELEASE_MEMO_ENTRIES = 1024;
export const RELEASE_MEMO_BYTES = 32 * 1024 * 1024;
export const RELEASE_MEMO_MAX_ENTRY_BYTES = RELEASE_MEMO_BYTES / 16;

interface Release {
  config: ServiceConfig;
  used: readonly string[];
  renewAt: number | undefined;
}

const memos = new WeakMap<Store, Lru<Release>>();

function memoOf(store: Store): Lru<Release> {
  let memo = memos.get(store);
  if (!memo) {
    memo = new Lru<Release>(RELEASE_MEMO_ENTRIES, {
      bytes: RELEASE_MEMO_BYTES,
      maxEntryBytes: RELEASE_MEMO_MAX_ENTRY_BYTES,
    });
    memos.set(store, memo);
  }
  return memo;
}

/** `renderRenewed`, or the release rendered before from the same sessions, while nothing it uses is due. */
export async function renderReleased(
  ctx: CasContext,
  sessions: SessionReader,
  sessionName: string,
  serviceName: string,
  remote: RemoteSecrets,
  used: Set<string>,
): Promise<{ config: ServiceConfig } & RenewalOutcome> {
  const state = remote.secrets.size === 0 ? readerState(sessions) : undefined;
  const key = state === undefined ? undefined : JSON.stringify([sessionName, serviceName, state]);
  const memo = memoOf(ctx.store);
  const known = key === undefined ? undefined : memo.get(key);
  if (known && (known.renewAt === undefined || ctx.now().getTime() < known.renewAt)) {
    for (const name of known.used) used.add(name);
    return { config: known.config, renewed: [], renewAt: known.renewAt };
  }
  const rendered = await renderRenewed(ctx, sessions, sessionName, serviceName, remote, used);
  if (key !== undefined && rendered.renewed.length === 0 && (rendered.due ?? 0) === 0) {
    // Frozen: every later attestation of this service is answered with the same object.
    const release = { config: frozen(rendered.config), used: Object.freeze([...used]), renewAt: rendered.renewAt };
    memo.set(key, release, key.length + sizeOf(rendered.config) + release.used.join('').length);
  } else if (key !== undefined) {
    memo.delete(key);
  }
  return rendered;
}

function frozen(config: ServiceConfig): ServiceConfig {
  for (const file of config.injectionFiles) Object.freeze(file);
  Object.freeze(config.injectionFiles);
  Object.freeze(config.command);
  Object.freeze(config.environment);
  return Object.freeze(config);
}

/** About what an entry holds besides its key: the rendered text and files (at most RENDER_LIMITS.totalBytes). */
function sizeOf(config: ServiceConfig): number {
  const files = config.injectionFiles.reduce((n, f) => n + f.path.length + f.content.length, 0);
  return files + JSON.stringify({ ...config, injectionFiles: [] }).length;
}

/** Entries kept for `store` now (tests). */
export function releaseMemoUse(store: Store): { entries: number; bytes: number } {
  const memo = memoOf(store);
  return { entries: memo.size, bytes: memo.bytes };
}
