import { z } from 'zod';
import type { Finding } from '../issues.js';

/**
 * Imports from and exports to sessions on another CAS (reference §4.3 "Export/import"). Veil's `cas_key` is
 * the CAS's identity: the hex SHA-256 of its CA certificate's DER, what `veil cas serve` prints and clients
 * pin. Both the object form and SCONE's URL form (`cas.example.com/cas_key=…,session=…`, local form
 * `/session=…`) parse into one typed form, the object form, so a read-back re-uploads unchanged.
 */
export const DEFAULT_CAS_PORT = 8081;

const HEX64 = /^[0-9a-fA-F]{64}$/;

/**
 * Why Veil refuses `cas_software_key`: in SCONE it names the CAS *software* (any instance running it, proved
 * by the CAS's enclave attestation). Veil cannot attest a remote CAS's code, so accepting it as the CA pin
 * would silently make it mean something else; the CA fingerprint (`cas_key`) is the one pin Veil checks.
 */
export const SOFTWARE_KEY_REFUSAL =
  'cas_software_key is not supported by Veil: it names the CAS software, which Veil cannot attest for a remote ' +
  "CAS; pin the remote CAS by cas_key (the SHA-256 fingerprint of its CA certificate, printed by 'veil cas serve')";

/** Problem with a `cas_url`, or undefined: `host[:port]` or `https://host[:port]`, nothing else. */
export function casUrlProblem(value: string): string | undefined {
  return parseCasUrl(value) ? undefined : "must be 'host[:port]' or 'https://host[:port]' (no path, query or user)";
}

/** The URL to dial for a `cas_url` (https, port 8081 unless given), or undefined when it is not one. */
export function parseCasUrl(value: string): URL | undefined {
  if (value.length === 0 || value.length > 256 || /\s/.test(value)) return undefined;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) return undefined;
  if (url.pathname !== '/' || url.hostname === '') return undefined;
  // URL drops a scheme's default port (443 for https): only a cas_url that names no port gets the CAS's.
  if (!url.port && !hasPort(value)) url.port = String(DEFAULT_CAS_PORT);
  return url;
}

/** Whether `host:port` (or `[v6]:port`, after any scheme) names a port. */
function hasPort(value: string): boolean {
  const authority = value.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/+$/, '');
  return /:\d+$/.test(authority) && (!authority.startsWith('[') || /\]:\d+$/.test(authority));
}

type Ctx = z.RefinementCtx;

/** `[host[:port]]/k=v,k=v` → the host part and the fields; problems go to `ctx`. */
function splitUrlForm(
  value: string,
  allowed: readonly string[],
  ctx: Ctx,
): { host: string; fields: Map<string, string> } {
  const body = value.replace(/^https:\/\//i, '');
  const slash = body.indexOf('/');
  const host = slash < 0 ? '' : body.slice(0, slash);
  const fields = new Map<string, string>();
  for (const part of (slash < 0 ? body : body.slice(slash + 1)).split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part.trim() : part.slice(0, eq).trim();
    if (!allowed.includes(key)) {
      ctx.addIssue({
        code: 'custom',
        message: `'${key}' is not a field of the URL form (fields: ${allowed.join(', ')})`,
      });
    } else if (fields.has(key)) {
      ctx.addIssue({ code: 'custom', message: `'${key}' is given twice` });
    } else fields.set(key, part.slice(eq + 1).trim());
  }
  if (slash < 0) ctx.addIssue({ code: 'custom', message: "the URL form is '<cas host>/cas_key=…,session=…'" });
  return { host, fields };
}

interface RemoteFields {
  session?: string | undefined;
  cas_url?: string | undefined;
  cas_key?: string | undefined;
  cas_software_key?: unknown;
}

/** The rules both directions share: a pin is hex SHA-256, a remote CAS needs a pin, software keys are refused. */
function checkRemote(v: RemoteFields, ctx: Ctx, urlNeeded: boolean, what = 'an import from', object = false): void {
  const at = (field: string) => (object ? { path: [field] } : {});
  if (v.cas_software_key !== undefined)
    ctx.addIssue({ code: 'custom', message: SOFTWARE_KEY_REFUSAL, ...at('cas_software_key') });
  // In the object form the schema's own pattern checks cas_key (and shows in the JSON Schema).
  if (!object && v.cas_key !== undefined && !HEX64.test(v.cas_key)) {
    ctx.addIssue({ code: 'custom', message: `cas_key ${PIN_FORMAT}` });
  }
  if (v.cas_url !== undefined) {
    const problem = casUrlProblem(v.cas_url);
    if (problem) ctx.addIssue({ code: 'custom', message: `cas_url ${problem}`, ...at('cas_url') });
    if (v.cas_key === undefined && v.cas_software_key === undefined) {
      ctx.addIssue({
        code: 'custom',
        message:
          `${what} another CAS (${v.cas_url}) needs cas_key: Veil never trusts a remote CAS it has not ` +
          "pinned (the SHA-256 fingerprint of its CA certificate, printed by 'veil cas serve')",
      });
    }
  } else if (urlNeeded && v.cas_key !== undefined) {
    ctx.addIssue({ code: 'custom', message: 'cas_key names another CAS: give its address in cas_url as well' });
  }
  if (v.session === undefined || v.session === '') ctx.addIssue({ code: 'custom', message: 'session is required' });
}

const PIN_FORMAT = 'must be 64 hex digits (the SHA-256 of the CA certificate of that CAS)';

const remoteFields = {
  cas_url: z.string().optional().meta({ description: "the other CAS: 'host[:port]' (port 8081 by default)" }),
  cas_key: z
    .string()
    .regex(HEX64, PIN_FORMAT)
    .optional()
    .meta({ description: "SHA-256 fingerprint of the other CAS's CA certificate (what 'veil cas serve' prints)" }),
  cas_software_key: z.unknown().optional().meta({ description: 'not supported by Veil (refused)' }),
};

/** Drops what the checks refused or what is absent, and writes the pin in lower case. */
function normalized<T extends RemoteFields>(v: T): Omit<T, 'cas_software_key'> {
  const { cas_software_key: _refused, ...rest } = v;
  const out = Object.fromEntries(Object.entries(rest).filter(([, x]) => x !== undefined)) as Omit<
    T,
    'cas_software_key'
  >;
  if (v.cas_key !== undefined) (out as RemoteFields).cas_key = v.cas_key.toLowerCase();
  return out;
}

export interface ImportRef {
  session: string;
  secret: string;
  cas_url?: string;
  cas_key?: string;
}

const importObject = z
  .strictObject({ session: z.string(), secret: z.string(), ...remoteFields })
  .superRefine((v, ctx) => checkRemote(v, ctx, true, 'an import from', true));

const IMPORT_FIELDS = ['cas_key', 'cas_software_key', 'session', 'secret'] as const;

const importString = z.string().transform((value, ctx): ImportRef => {
  const { host, fields } = splitUrlForm(value, IMPORT_FIELDS, ctx);
  const v = { ...Object.fromEntries(fields), ...(host ? { cas_url: host } : {}) } as RemoteFields & { secret?: string };
  checkRemote(v, ctx, true);
  if (!v.secret) ctx.addIssue({ code: 'custom', message: 'secret=<name in the exporting session> is required' });
  return normalized({ session: v.session ?? '', secret: v.secret ?? '', ...v });
});

/** `import:` — `{session, secret}` locally, `{cas_url, cas_key, session, secret}` from another CAS, or the URL form. */
export const importRef = z.union([importObject.transform((v): ImportRef => normalized(v)), importString]);

export interface RemoteExportTarget {
  session: string;
  session_hash?: string;
  cas_url?: string;
  cas_key: string;
}

const EXPORT_FIELDS = ['cas_key', 'cas_software_key', 'session', 'session_hash'] as const;

function checkHash(v: { session_hash?: string | undefined }, ctx: Ctx): void {
  if (v.session_hash !== undefined && !HEX64.test(v.session_hash)) {
    ctx.addIssue({ code: 'custom', message: 'session_hash must be 64 hex digits' });
  }
}

/**
 * An export target naming a session: of this CAS (`{session, session_hash?}`), or of another CAS when it
 * carries `cas_key` (the importer is known by its CA fingerprint; its address is optional).
 */
export const exportSessionObject = z
  .strictObject({
    session: z.string(),
    session_hash: z.string().regex(HEX64, 'must be 64 hex digits').optional(),
    ...remoteFields,
  })
  .superRefine((v, ctx) => checkRemote(v, ctx, false, 'an export to', true))
  .transform((v) => {
    const out = normalized(v);
    if (out.session_hash !== undefined) out.session_hash = out.session_hash.toLowerCase();
    return out as { session: string; session_hash?: string; cas_url?: string; cas_key?: string };
  });

/** The URL form of an export target: remote (`host/cas_key=…,session=…`) or local (`/session=…,session_hash=…`). */
export const exportString = z.string().transform((value, ctx) => {
  const { host, fields } = splitUrlForm(value, EXPORT_FIELDS, ctx);
  const v = { ...Object.fromEntries(fields), ...(host ? { cas_url: host } : {}) } as RemoteFields & {
    session_hash?: string;
  };
  checkRemote(v, ctx, false, 'an export to');
  checkHash(v, ctx);
  const out = normalized({ session: v.session ?? '', ...v });
  if (out.session_hash !== undefined) out.session_hash = out.session_hash.toLowerCase();
  return out as { session: string; session_hash?: string; cas_url?: string; cas_key?: string };
});

/** Whether an import is fetched from another CAS. */
export function isRemoteImport(ref: { cas_key?: string | undefined } | undefined): boolean {
  return ref?.cas_key !== undefined;
}

/** Whether an export target names a session on another CAS (so never a session of this one). */
export function isRemoteTarget(target: object): target is RemoteExportTarget {
  return 'cas_key' in target && typeof target.cas_key === 'string';
}

/**
 * A remote import is fetched only when a service attests, after the session's own secrets were made at upload;
 * so no certificate of the session can be issued by one or keyed with one.
 */
export function remoteImportRules(session: {
  secrets?: Array<{ name: string; import?: ImportRef | undefined; issuer?: string; private_key?: string }>;
}): Finding[] {
  const secrets = session.secrets ?? [];
  const remote = new Map(secrets.filter((s) => isRemoteImport(s.import)).map((s) => [s.name, s.import!.cas_url]));
  return secrets.flatMap((s, i) =>
    (['issuer', 'private_key'] as const).flatMap((field) => {
      const ref = s[field];
      if (ref === undefined || !remote.has(ref)) return [];
      const message =
        `${field} '${ref}' is imported from the CAS at ${remote.get(ref)}: a certificate issued or keyed by a ` +
        'secret of another CAS is not supported by Veil (imports from another CAS are fetched when a service ' +
        'attests, after the certificates of the session are made)';
      return [{ path: ['secrets', i, field], message }];
    }),
  );
}
