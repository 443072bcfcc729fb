import { Lru } from '../lru.js';
import { CasError } from './errors.js';
import { sessionOf } from './parsed.js';
import { withRenewals } from './renewed.js';
import { resolveRelative } from './secret-view.js';
import type { SessionRecord, Store } from './store/index.js';

/**
 * Synchronous reads of current sessions, for the code that renders and resolves imports (placeholders,
 * issuer chains): the store is asynchronous, so the sessions a judgement may need are loaded before it
 * starts — the session itself, its namespace session, and every session it imports from. Imports do not
 * chain (an imported value is read from its exporter's own secrets, and names in it are qualified with that
 * exporter), so this set is closed; a name outside it is refused (fail closed), never read as "absent".
 */
export interface SessionReader {
  current(name: string): SessionRecord | undefined;
  /** Every session loaded, with the hash it had then (null: it did not exist): what a judgement read. */
  loaded(): ReadonlyMap<string, string | null>;
}

interface ImportingSession {
  name: string;
  secrets?: ReadonlyArray<{ import?: { session?: string | undefined } | undefined }> | undefined;
}

/** The sessions a session's judgement reads: itself, the given extra names, and its import sources. */
export function sessionsRead(session: ImportingSession, extra: readonly string[] = []): string[] {
  const names = new Set([session.name, ...extra]);
  for (const spec of session.secrets ?? []) {
    const from = spec.import?.session;
    if (from !== undefined) names.add(resolveRelative(session.name, from));
  }
  return [...names];
}

/**
 * Reads `names` (those of `known` are taken as given: read already, they must not change under a judgement),
 * each with its renewed certificates in place of the version's own (cas/renewed.ts). `known` are records as
 * the store returned them (no renewals applied): `keepLoaded` may cache them.
 */
export async function loadSessions(
  store: Store,
  names: readonly string[],
  known: readonly SessionRecord[] = [],
): Promise<SessionReader> {
  const records = new Map<string, SessionRecord | undefined>(known.map((r) => [r.name, r]));
  const missing = names.filter((name) => !records.has(name));
  const loaded = await currentRecords(store, missing);
  for (const [i, name] of missing.entries()) records.set(name, loaded[i]);
  const asStored = [...records.values()].filter((r): r is SessionRecord => r !== undefined);
  const renewals = await Promise.all([...records.values()].map((r) => r && store.renewals(r.name, r.hash)));
  const state: Array<[string, string | null, Array<[string, number]>]> = [];
  for (const [i, [name, record]] of [...records].entries()) {
    const applied = renewals[i];
    records.set(name, record && applied ? withRenewals(record, applied) : record);
    const generations = [...(applied ?? [])].map(([secret, r]): [string, number] => [secret, r.generation]);
    state.push([name, record?.hash ?? null, generations.sort(byFirst)]);
  }
  const reader: SessionReader = {
    current(name) {
      if (records.has(name)) return records.get(name);
      throw new CasError('CAS_INTERNAL', `session '${name}' was read without being loaded first`, {
        hint: 'this is a defect of the CAS; report it',
      });
    },
    loaded() {
      return new Map([...records].map(([name, r]) => [name, r?.hash ?? null]));
    },
  };
  keepable.set(reader, { store, records: asStored });
  states.set(reader, JSON.stringify(state.sort(byFirst)));
  return reader;
}

/**
 * Everything a judgement by `reader` read, as one string: each session's name and version hash and the generation
 * of each renewal applied to it. Versions are immutable and a renewal is a new generation, so two readers with
 * the same state hold the same records: what is rendered from one is what would be rendered from the other
 * (release-memo.ts). Undefined for readers made elsewhere (RenewedReader), which hold changes of their own.
 */
export function readerState(reader: SessionReader): string | undefined {
  return states.get(reader);
}

const states = new WeakMap<SessionReader, string>();
const byFirst = (a: [string, ...unknown[]], b: [string, ...unknown[]]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** The first session of `reader` whose head is no longer the one it loaded, read from the store now. */
export async function movedSince(store: Store, reader: SessionReader): Promise<string | undefined> {
  const judged = [...reader.loaded()];
  const now = await store.heads(judged.map(([name]) => name));
  return judged.find(([name, hash]) => now.get(name) !== hash)?.[0];
}

/** A session as it is now and the sessions its imports read, loaded together. */
export async function readerFor(store: Store, name: string): Promise<SessionReader> {
  const [record] = await currentRecords(store, [name]);
  if (!record) return loadSessions(store, [name]);
  return loadSessions(store, sessionsRead(sessionOf(record)), [record]);
}

/**
 * Decoded (unsealed) session versions per store, one version per name, used only for a head of exactly that
 * version hash (the entry's own). A version is immutable, so a hit can only ever be what reading that exact
 * version returns; renewals (state beside a version) are never part of an entry: they are read and applied
 * after it on every load. The heads are read from the store on every call, so an update appended by any
 * process sharing the store is used at once.
 *
 * Bounded by count and by bytes (README "Limits"): a session may be as large as the upload limit, so 1,024
 * of them could hold a gigabyte. A version larger than SESSION_CACHE_MAX_ENTRY_BYTES is never cached.
 * Reading does not fill the cache: a read happens before the caller is judged (an attestation reads the
 * policy its evidence is judged by), so a stranger naming many sessions would push out the working set.
 * Only `keepLoaded`, called once a request was found entitled to what it read, adds entries.
 */
export const SESSION_CACHE_ENTRIES = 1024;
export const SESSION_CACHE_BYTES = 64 * 1024 * 1024;
export const SESSION_CACHE_MAX_ENTRY_BYTES = SESSION_CACHE_BYTES / 16;
const decoded = new WeakMap<Store, Lru<SessionRecord>>();
/** What each reader read as stored (before renewals), for `keepLoaded`. */
const keepable = new WeakMap<SessionReader, { store: Store; records: readonly SessionRecord[] }>();

function cacheOf(store: Store): Lru<SessionRecord> {
  let cache = decoded.get(store);
  if (!cache) {
    // The per-entry share is judged by keepLoaded (which remembers what was too large), not here.
    cache = new Lru<SessionRecord>(SESSION_CACHE_ENTRIES, {
      bytes: SESSION_CACHE_BYTES,
      maxEntryBytes: SESSION_CACHE_BYTES,
    });
    decoded.set(store, cache);
  }
  return cache;
}

/**
 * The size a decoded version is counted at: the characters of its text, secrets (as JSON) and creator, about
 * what the store keeps sealed; the decoded objects take a small multiple of it. Computed only when an entry
 * is added, never on a hit.
 */
export function decodedSize(record: SessionRecord): number {
  return record.text.length + JSON.stringify(record.secrets).length + record.creator.length;
}

/**
 * The caller of the judgement `reader` served was found entitled to what it read (a service whose evidence
 * and identity were accepted, another CAS a secret was released to): its versions may be cached now.
 */
export function keepLoaded(reader: SessionReader): void {
  const read = keepable.get(reader);
  if (!read) return;
  const cache = cacheOf(read.store);
  const large = tooLargeOf(read.store);
  for (const record of read.records) {
    if (cache.get(record.name)?.hash === record.hash) continue;
    // A version over the share is read on every attestation anyway; it is not measured again each time.
    const version = `${record.name}\0${record.hash}`;
    if (large.get(version)) continue;
    const size = decodedSize(record);
    if (size > SESSION_CACHE_MAX_ENTRY_BYTES) large.set(version, true);
    else cache.set(record.name, record, size);
  }
}

const tooLarge = new WeakMap<Store, Lru<true>>();

function tooLargeOf(store: Store): Lru<true> {
  let versions = tooLarge.get(store);
  if (!versions) {
    versions = new Lru<true>(SESSION_CACHE_ENTRIES);
    tooLarge.set(store, versions);
  }
  return versions;
}

/** How much the session cache of `store` holds now (for tests and metrics). */
export function sessionCacheUse(store: Store): { entries: number; bytes: number } {
  const cache = cacheOf(store);
  return { entries: cache.size, bytes: cache.bytes };
}

/** The version hash cached for `name` in `store`'s session cache, if any. */
export function cachedVersion(store: Store, name: string): string | undefined {
  return cacheOf(store).get(name)?.hash;
}

/** The current version of each name (undefined: absent), the decoded record served from the cache when the head's hash matches. */
export async function currentRecords(store: Store, names: readonly string[]): Promise<(SessionRecord | undefined)[]> {
  if (names.length === 0) return [];
  const cache = cacheOf(store);
  const heads = await store.heads(names);
  return Promise.all(
    names.map(async (name) => {
      const hash = heads.get(name) ?? null;
      if (hash === null) return store.current(name);
      const hit = cache.get(name);
      if (hit !== undefined && hit.hash === hash) return hit;
      return store.current(name);
    }),
  );
}
