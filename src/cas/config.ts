import { findPlaceholders, renderPlaceholders, splitCommand, type Session } from '../policy/index.js';
import { SecretsError, renderSecret } from '../secrets/index.js';
import type { ServiceConfig } from '../contract/index.js';
import { CasError } from './errors.js';
import { sessionOf } from './parsed.js';
import { createSecretView, type SecretLookup } from './secret-view.js';
import { readerFor, type SessionReader } from './session-reader.js';
import type { Store } from './store/index.js';
import type { RemoteSecrets } from './remote-import.js';

/** What a verified service receives: its policy with every placeholder filled (reference §4.6). */
export type { ServiceConfig } from '../contract/index.js';

/** renderServiceConfig of the sessions as they are in the store now. */
export async function renderConfig(
  store: Store,
  sessionName: string,
  serviceName: string,
  remote?: RemoteSecrets,
): Promise<ServiceConfig> {
  return renderServiceConfig(await readerFor(store, sessionName), sessionName, serviceName, remote);
}

/**
 * Renders the configuration of `<session>/<service>`. Imports are resolved here, at the moment of use,
 * so an import that is not (or no longer) exported fails now with both sessions named.
 */
export function renderServiceConfig(
  store: SessionReader,
  sessionName: string,
  serviceName: string,
  remote?: RemoteSecrets,
  /** Filled with the name of every secret a placeholder rendered (the audit entry of the release). */
  used: Set<string> = new Set(),
): ServiceConfig {
  const record = store.current(sessionName);
  if (!record)
    throw new CasError('CAS_NOT_FOUND', `session '${sessionName}' does not exist`, { hint: 'check SCONE_CONFIG_ID' });
  if (remote && remote.hash !== record.hash) {
    throw new CasError('CAS_BUSY', `session '${sessionName}' changed while its imports from other CAS were fetched`, {
      hint: 'start the service again',
    });
  }
  const session = sessionOf(record);
  const service = session.services?.find((s) => s.name === serviceName);
  if (!service) {
    throw new CasError('CAS_NOT_FOUND', `session '${sessionName}' has no service '${serviceName}'`, {
      hint: `SCONE_CONFIG_ID must be <session>/<service>; services here: ${(session.services ?? []).map((s) => s.name).join(', ') || 'none'}`,
    });
  }
  const lookup = createSecretView(store, record, session, remote?.secrets);
  const meter: Meter = { session: sessionName, service: serviceName, total: 0, used };
  try {
    return renderService(session, service, lookup, meter);
  } catch (err) {
    if (err instanceof SecretsError) {
      throw new CasError('CAS_RENDER_FAILED', `service '${serviceName}' of session '${sessionName}': ${err.message}`, {
        hint: err.hint,
        cause: err,
      });
    }
    throw err;
  }
}

type Service = NonNullable<Session['services']>[number];

/**
 * What one rendered configuration may grow to (README "Limits"). A placeholder can stand for a whole
 * certificate chain, so a session under the upload limit could otherwise render an answer of many megabytes
 * on the event loop; rendering counts as it goes and stops at the first limit passed.
 */
export const RENDER_LIMITS = {
  /** Each injection file, after its placeholders are filled. */
  fileBytes: 1024 * 1024,
  /** The whole configuration: command, environment, injection files and fspf key together. */
  totalBytes: 4 * 1024 * 1024,
} as const;

interface Meter {
  session: string;
  service: string;
  total: number;
  used: Set<string>;
}

/** Adds `bytes` to the configuration's count (and to its file's, `fileBytes`), refusing past a limit. */
function charge(meter: Meter, bytes: number, where: string, fileBytes?: number): void {
  meter.total += bytes;
  if (fileBytes !== undefined && fileBytes > RENDER_LIMITS.fileBytes) throw tooLarge(meter, where, 'fileBytes');
  if (meter.total > RENDER_LIMITS.totalBytes) throw tooLarge(meter, where, 'totalBytes');
}

function tooLarge(meter: Meter, where: string, limit: keyof typeof RENDER_LIMITS): CasError {
  return new CasError(
    'CAS_CONFIG_TOO_LARGE',
    `the configuration of service '${meter.service}' of session '${meter.session}' grows past the limit ` +
      `${limit} = ${RENDER_LIMITS[limit]} bytes while rendering ${where}`,
    { hint: 'reference fewer or smaller secrets there (a certificate chain is large); see README "Limits"' },
  );
}

function renderService(session: Session, service: Service, lookup: SecretLookup, meter: Meter): ServiceConfig {
  const fill = (where: string) => filler(lookup, meter, where);
  const environment = Object.entries(service.environment ?? {});
  return {
    session: meter.session,
    service: meter.service,
    command: commandOf(service.command).map(fill('the command')),
    environment: Object.fromEntries(environment.map(([k, v]) => [k, fill(`environment ${k}`)(String(v))])),
    pwd: service.pwd ?? '/',
    injectionFiles: injectionFilesOf(session, service.image_name, lookup, meter),
    ...fspfOf(service, fill('fspf_key')),
    ...(service.renewal ? { renewal: service.renewal } : {}),
  };
}

/** Text fields (arguments, environment) take text forms; binary forms there are refused by the policy check. */
function filler(lookup: SecretLookup, meter: Meter, where: string): (text: string) => string {
  return (text) => {
    charge(meter, Buffer.byteLength(text), where);
    return renderPlaceholders(text, (p) => {
      meter.used.add(p.secret);
      const rendered = renderSecret(p.secret, p.suffix, lookup);
      const value = typeof rendered === 'string' ? rendered : rendered.toString('latin1');
      charge(meter, p.escapeJson ? JSON.stringify(value).length - 2 : Buffer.byteLength(value), where);
      return value;
    });
  };
}

/** Files may hold binary forms (`:der`, `:bin`), so they are assembled as bytes, not through a string. */
function fileContent(text: string, lookup: SecretLookup, meter: Meter, where: string): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const add = (part: Buffer) => {
    size += part.length;
    charge(meter, part.length, where, size);
    parts.push(part);
  };
  let at = 0;
  for (const p of findPlaceholders(text)) {
    add(Buffer.from(text.slice(at, p.index), 'utf8'));
    meter.used.add(p.secret);
    const value = renderSecret(p.secret, p.suffix, lookup);
    const piece = p.escapeJson ? JSON.stringify(value.toString()).slice(1, -1) : value;
    add(typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece);
    at = p.index + p.raw.length;
  }
  add(Buffer.from(text.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

/** A string command splits as the session language says (§4.2; the schema refused what does not split). */
export function commandOf(command: string | string[] | undefined): string[] {
  return command === undefined ? [] : splitCommand(command);
}

function injectionFilesOf(
  session: Session,
  imageName: string | undefined,
  lookup: SecretLookup,
  meter: Meter,
): ServiceConfig['injectionFiles'] {
  const image = session.images?.find((i) => i.name === imageName);
  return (image?.injection_files ?? []).map((file) => {
    const entry = typeof file === 'string' ? { path: file } : file;
    const content = fileContent(entry.content ?? '', lookup, meter, `injection file '${entry.path}'`);
    return { path: entry.path, content, mode: modeOf(entry.permission) };
  });
}

/**
 * YAML 1.2 reads `0600` as the decimal 600; nobody means a decimal file mode, so a number written with octal
 * digits only is taken as octal.
 */
function modeOf(permission: unknown): number {
  if (typeof permission === 'number')
    return /^[0-7]{3,4}$/.test(String(permission)) ? parseInt(String(permission), 8) : permission;
  if (typeof permission === 'string') return parseInt(permission.replace(/^0o/, ''), 8);
  return 0o700;
}

function fspfOf(service: Service, fill: (t: string) => string): Pick<ServiceConfig, 'fspf'> {
  if (!service.fspf_path && !service.fspf_key && !service.fspf_tag) return {};
  return {
    fspf: {
      ...(service.fspf_path ? { path: service.fspf_path } : {}),
      ...(service.fspf_key ? { key: fill(service.fspf_key) } : {}),
      ...(service.fspf_tag ? { tag: service.fspf_tag } : {}),
    },
  };
}
