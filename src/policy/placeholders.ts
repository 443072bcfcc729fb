/** `$$SCONE::name[suffix][|escape(json)]$$` (session language §4.3 and §4.6). */
export interface Placeholder {
  raw: string;
  secret: string;
  suffix: string;
  escapeJson: boolean;
  index: number;
}

/** An OpenPGP key's forms (pgp-key secrets). */
const PGP_FORMS = [
  ':privatekey:asciiarmored',
  ':privatekey:binary',
  ':privatekey:base64',
  ':publickey:asciiarmored',
  ':publickey:binary',
  ':publickey:base64',
] as const;

export const PLACEHOLDER_SUFFIXES = [
  '',
  '.crt',
  '.key',
  '.chain',
  '.hex',
  ':crt',
  ':crt:pem',
  ':crt:der',
  ':chain',
  ':privatekey',
  ':privatekey:pem',
  ':privatekey:pkcs8:pem',
  ':privatekey:der',
  ':privatekey:pkcs8:der',
  ':pem',
  ':der',
  ':pkcs8:pem',
  ':pkcs8:der',
  ':bin',
  ':hex',
  ':base64',
  ':base64url',
  ':base32',
  ':base32nopad',
  ...PGP_FORMS,
] as const;

const PATTERN = /\$\$SCONE::([^$\s]+?)\$\$/g;
const LEGACY = /^(.+?)(\.crt|\.key|\.chain|\.hex)$/;

export function findPlaceholders(text: string): Placeholder[] {
  return [...text.matchAll(PATTERN)].map((m) => ({ raw: m[0], index: m.index!, ...splitBody(m[1]!) }));
}

function splitBody(body: string): { secret: string; suffix: string; escapeJson: boolean } {
  const escapeJson = body.endsWith('|escape(json)');
  const core = escapeJson ? body.slice(0, -'|escape(json)'.length) : body;
  const colon = core.indexOf(':');
  if (colon >= 0) return { secret: core.slice(0, colon), suffix: core.slice(colon), escapeJson };
  const legacy = LEGACY.exec(core);
  return legacy ? { secret: legacy[1]!, suffix: legacy[2]!, escapeJson } : { secret: core, suffix: '', escapeJson };
}

export function isKnownSuffix(suffix: string): boolean {
  return (PLACEHOLDER_SUFFIXES as readonly string[]).includes(suffix);
}

const CERT = new Set(['', '.crt', ':crt', ':crt:pem', ':crt:der', ':chain', '.chain']);
const KEY = new Set([
  '',
  '.key',
  ':pem',
  ':der',
  ':pkcs8:pem',
  ':pkcs8:der',
  ':privatekey',
  ':privatekey:pem',
  ':privatekey:pkcs8:pem',
  ':privatekey:der',
  ':privatekey:pkcs8:der',
]);
const PGP = new Set<string>(['', ...PGP_FORMS]);
const BYTES = new Set(['', '.hex', ':bin', ':hex', ':base64', ':base64url', ':base32', ':base32nopad']);

/** Whether a suffix gives a form of a secret of this kind (undefined kind: imported, checked at use). */
export function suffixFitsKind(suffix: string, kind: string | undefined): boolean {
  if (kind === undefined) return isKnownSuffix(suffix);
  if (kind === 'x509' || kind === 'x509-ca')
    return CERT.has(suffix) || (KEY.has(suffix) && suffix !== '' && !/^:(pem|der|pkcs8)/.test(suffix));
  if (kind === 'private-key') return KEY.has(suffix);
  if (kind === 'pgp-key') return PGP.has(suffix);
  // A fragment is filled into sections (fragments.ts), never rendered into text.
  if (kind === 'config-fragment') return false;
  return BYTES.has(suffix);
}

/** Replaces every placeholder with what `resolve` gives, JSON-escaped (without quotes) where asked. */
export function renderPlaceholders(text: string, resolve: (p: Placeholder) => string): string {
  let out = '';
  let at = 0;
  for (const p of findPlaceholders(text)) {
    const value = resolve(p);
    out += text.slice(at, p.index) + (p.escapeJson ? JSON.stringify(value).slice(1, -1) : value);
    at = p.index + p.raw.length;
  }
  return out + text.slice(at);
}
