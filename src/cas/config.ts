import { findPlaceholders, renderPlaceholders, splitCommand, type Session } from '../policy/index.js';
import { renderSecret } from '../secrets/index.js';
import type { ServiceConfig } from '../contract/index.js';
import { CasError } from './errors.js';
import { sessionOf } from './parsed.js';
import { createSecretView, type SecretLookup } from './secret-view.js';
import type { Store } from './store/index.js';

/** What a verified service receives: its policy with every placeholder filled (reference §4.6). */
export type { ServiceConfig } from '../contract/index.js';

/**
 * Renders the configuration of `<session>/<service>`. Imports are resolved here, at the moment of use,
 * so an import that is not (or no longer) exported fails now with both sessions named.
 */
export function renderServiceConfig(store: Store, sessionName: string, serviceName: string): ServiceConfig {
  const record = store.current(sessionName);
  if (!record)
    throw new CasError('CAS_NOT_FOUND', `session '${sessionName}' does not exist`, { hint: 'check SCONE_CONFIG_ID' });
  const session = sessionOf(record);
  const service = session.services?.find((s) => s.name === serviceName);
  if (!service) {
    throw new CasError('CAS_NOT_FOUND', `session '${sessionName}' has no service '${serviceName}'`, {
      hint: `SCONE_CONFIG_ID must be <session>/<service>; services here: ${(session.services ?? []).map((s) => s.name).join(', ') || 'none'}`,
    });
  }
  const lookup = createSecretView(store, record, session);
  const fill = filler(lookup);
  return {
    session: sessionName,
    service: serviceName,
    command: commandOf(service.command).map(fill),
    environment: Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, fill(String(v))])),
    pwd: service.pwd ?? '/',
    injectionFiles: injectionFilesOf(session, service.image_name, lookup),
    ...fspfOf(service, fill),
  };
}

type Service = NonNullable<Session['services']>[number];

/** Text fields (arguments, environment) take text forms; binary forms there are refused by the policy check. */
function filler(lookup: SecretLookup): (text: string) => string {
  return (text) =>
    renderPlaceholders(text, (p) => {
      const value = renderSecret(p.secret, p.suffix, lookup);
      return typeof value === 'string' ? value : value.toString('latin1');
    });
}

/** Files may hold binary forms (`:der`, `:bin`), so they are assembled as bytes, not through a string. */
function fileContent(text: string, lookup: SecretLookup): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of findPlaceholders(text)) {
    const value = renderSecret(p.secret, p.suffix, lookup);
    const piece = p.escapeJson ? JSON.stringify(value.toString()).slice(1, -1) : value;
    parts.push(
      Buffer.from(text.slice(at, p.index), 'utf8'),
      typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece,
    );
    at = p.index + p.raw.length;
  }
  parts.push(Buffer.from(text.slice(at), 'utf8'));
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
): ServiceConfig['injectionFiles'] {
  const image = session.images?.find((i) => i.name === imageName);
  return (image?.injection_files ?? []).map((file) => {
    const entry = typeof file === 'string' ? { path: file } : file;
    return { path: entry.path, content: fileContent(entry.content ?? '', lookup), mode: modeOf(entry.permission) };
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
