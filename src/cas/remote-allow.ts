import { isRemoteImport, parseCasUrl } from '../policy/remote.js';
import { CasError } from './errors.js';

/** One other CAS, by the `cas_url` and `cas_key` an import names it with. */
export interface RemoteSource {
  url: string;
  key: string;
}

/**
 * The other CAS this one may fetch imports from, as its operator lists them (`--remote-cas`). Default deny:
 * a session is written by whoever may create one, so without this list any stranger could make the CAS dial
 * any address it reaches (an internal port scan). Entries match on address and key both.
 */
export interface RemoteCasList {
  has(from: RemoteSource): boolean;
}

const HEX64 = /^[0-9a-f]{64}$/i;

/** `host:port=key`, with the port SCONE's default when the URL leaves it out; undefined when not an address. */
function canonical(from: RemoteSource): string | undefined {
  const url = parseCasUrl(from.url);
  return url && HEX64.test(from.key) ? `${url.host}=${from.key.toLowerCase()}` : undefined;
}

export function remoteCasList(entries: readonly RemoteSource[] = []): RemoteCasList {
  const keys = new Set<string>();
  entries.forEach((entry, i) => {
    const key = canonical(entry);
    if (!key) throw badEntry(`remoteCas[${i}] (${entry.url}=${entry.key})`);
    keys.add(key);
  });
  return { has: (from) => keys.has(canonical(from) ?? '') };
}

/** One `--remote-cas HOST[:PORT]=CAS_KEY` value. */
export function parseRemoteCas(value: string): RemoteSource {
  const at = value.lastIndexOf('=');
  const from = { url: value.slice(0, at), key: value.slice(at + 1) };
  if (at < 0 || !canonical(from)) throw badEntry(`--remote-cas '${value}'`);
  return from;
}

function badEntry(what: string): CasError {
  return new CasError('CAS_REMOTE_NOT_ALLOWED', `${what} is not HOST[:PORT]=CAS_KEY`, {
    hint: "give the other CAS's address and its CA fingerprint (64 hex, as its 'veil cas serve' prints it)",
  });
}

/** Refused at upload, so that a session naming an unlisted CAS is never stored, let alone dialled. */
export function notAllowed(from: RemoteSource, secret: string): CasError {
  return new CasError(
    'CAS_REMOTE_NOT_ALLOWED',
    `secret '${secret}' imports from the CAS at ${from.url} (cas_key ${from.key}), which this CAS may not fetch from`,
    {
      hint:
        `ask the operator of this CAS to list it (veil cas serve --remote-cas HOST:PORT=CAS_KEY, startCas ` +
        'option remoteCas; README "Policies on several CAS"), or import from a CAS that is listed',
    },
  );
}

/** Every remote import of an uploaded session must name a listed CAS (default deny: no list, none may). */
export function checkRemoteCas(
  list: RemoteCasList | undefined,
  secrets: ReadonlyArray<{ name: string; import?: { cas_url?: string; cas_key?: string } | undefined }> = [],
): void {
  for (const spec of secrets) {
    if (!spec.import || !isRemoteImport(spec.import)) continue;
    const from = { url: spec.import.cas_url ?? '', key: spec.import.cas_key ?? '' };
    if (!list?.has(from)) throw notAllowed(from, spec.name);
  }
}
