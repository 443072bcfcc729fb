import { X509Certificate, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { Lru } from '../lru.js';

/**
 * `access_policy` entries (session language §4.1) in a typed form, parsed once per list. Governance groups
 * (`require-all`, `require-at-least-N`) hold plain entries only: one level, so that "N distinct members" is
 * counted over identities (key hashes) and cannot be met twice by one key through nested groups.
 */
export type Permission = 'read' | 'update' | 'create_sessions';

/** The signer key types Veil verifies, and how: Ed25519 (pure), ECDSA with SHA-256/384, RSA PKCS#1 v1.5. */
export type SignerKeyType = 'ed25519' | 'p256' | 'p384' | 'rsa';

export type LeafEntry =
  | { kind: 'creator' }
  /** A PEM certificate or a key hash: the TLS client whose public key has this hash. */
  | { kind: 'key'; keyHash: string }
  /** `$$SCONE::name$$`: the certificate of an x509/x509-ca secret of the same session. */
  | { kind: 'secret'; name: string }
  /** `signer: <SPKI PEM>`: a valid signature over the upload by this key. */
  | { kind: 'signer'; keyHash: string; key: KeyObject; keyType: SignerKeyType };

export type AccessEntry =
  | { kind: 'any' }
  | { kind: 'none' }
  /** What names nobody (never in a validated session; tolerated for lists that did not pass the schema). */
  | { kind: 'nobody' }
  | LeafEntry
  | { kind: 'group'; label: string; need: number; members: LeafEntry[] };

/** Smallest and largest RSA signer keys; the exponent is bounded since verification time grows with it. */
const RSA_BITS = { min: 2048, max: 8192 } as const;
const RSA_MAX_EXPONENT = 2n ** 32n;

const KEY_HASH = /^[0-9a-fA-F]{64}$/;
const SECRET_ENTRY = /^\$\$SCONE::([A-Za-z0-9_\-.~]{1,128})\$\$$/;
const AT_LEAST = /^require-at-least-([1-9][0-9]{0,3})$/;
export const AT_LEAST_KEY = /^require-at-least-[1-9][0-9]{0,3}$/;

export const ENTRY_FORMS =
  'CREATOR, ANY, NONE, a PEM certificate, a key hash (64 hex), $$SCONE::secret$$, {signer: <public key PEM>}, ' +
  '{require-all: [...]} or {require-at-least-N: [...]}';

type Parsed<T> = { entry: T } | { problem: string };

/** Keyed by the SHA-256 of the entry's text, so that long entries cost the cache no memory. */
const keyCache = new Lru<Parsed<LeafEntry>>(1024);

/** One plain entry, or what is wrong with it. PEM parsing is cached by the text (entries repeat across versions). */
export function parseLeaf(raw: unknown, permission: Permission): Parsed<LeafEntry> {
  if (typeof raw === 'string') return parseStringLeaf(raw);
  if (isObject(raw) && Object.keys(raw).length === 1 && 'signer' in raw) {
    if (permission === 'read') {
      return {
        problem:
          'a signer entry is not allowed in read: a read answers a TLS client, which signs nothing; ' +
          'name its certificate or key hash instead',
      };
    }
    return typeof raw.signer === 'string'
      ? cached(`signer\0${raw.signer}`, () => parseSigner(raw.signer as string))
      : { problem: 'signer must be a public key PEM (-----BEGIN PUBLIC KEY-----)' };
  }
  return { problem: `must be ${ENTRY_FORMS}` };
}

function parseStringLeaf(raw: string): Parsed<LeafEntry> {
  if (raw === 'CREATOR') return { entry: { kind: 'creator' } };
  if (KEY_HASH.test(raw)) return { entry: { kind: 'key', keyHash: raw.toLowerCase() } };
  const secret = SECRET_ENTRY.exec(raw);
  if (secret) return { entry: { kind: 'secret', name: secret[1] as string } };
  if (raw.startsWith('$$SCONE::')) {
    return { problem: 'a secret entry is $$SCONE::name$$, naming an x509 or x509-ca secret, without a suffix' };
  }
  if (raw.includes('-----BEGIN CERTIFICATE-----')) return cached(`cert\0${raw}`, () => parseCertificate(raw));
  if (raw === 'ANY' || raw === 'NONE') return { problem: `${raw} must be alone in its list, never in a group` };
  return { problem: `must be ${ENTRY_FORMS}` };
}

function cached(key: string, parse: () => Parsed<LeafEntry>): Parsed<LeafEntry> {
  return keyCache.memo(sha256Hex(Buffer.from(key, 'utf8')), parse);
}

function parseCertificate(pem: string): Parsed<LeafEntry> {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (blocks !== 1) return { problem: 'a certificate entry must hold exactly one PEM certificate' };
  try {
    // The hash the CAS computes for a client presenting this certificate (its EC point uncompressed).
    return { entry: { kind: 'key', keyHash: signerKeyHashOf(new X509Certificate(pem).publicKey) } };
  } catch {
    return { problem: 'is not a valid PEM certificate' };
  }
}

function parseSigner(pem: string): Parsed<LeafEntry> {
  if (!/^\s*-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----\s*$/.test(pem)) {
    return { problem: 'signer must be one SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----)' };
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return { problem: 'signer is not a valid public key PEM' };
  }
  const keyType = signerKeyType(key);
  if (typeof keyType !== 'string' || !isSignerType(keyType)) return { problem: keyType.problem };
  return { entry: { kind: 'signer', keyHash: signerKeyHashOf(key), key, keyType } };
}

const isSignerType = (t: string): t is SignerKeyType => ['ed25519', 'p256', 'p384', 'rsa'].includes(t);

/** The signer key type of a key (public or private), or why it cannot sign uploads. */
export function signerKeyType(key: KeyObject): SignerKeyType | { problem: string } {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'p256';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return 'p384';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    const exponent = details.publicExponent ?? 0n;
    if (bits >= RSA_BITS.min && bits <= RSA_BITS.max && exponent < RSA_MAX_EXPONENT) return 'rsa';
    return { problem: `an RSA signer key must have ${RSA_BITS.min}–${RSA_BITS.max} bits and an exponent below 2^32` };
  }
  const what = key.asymmetricKeyType === 'ec' ? `EC curve ${details.namedCurve}` : String(key.asymmetricKeyType);
  return { problem: `signer key type ${what} is not supported by Veil: use Ed25519, ECDSA P-256 or P-384, or RSA` };
}

/** One entry of a permission list, or what is wrong with it; `path` locates member problems. */
export function parseEntry(raw: unknown, permission: Permission): { entry: AccessEntry } | { problems: Problem[] } {
  if (raw === 'ANY') return { entry: { kind: 'any' } };
  if (raw === 'NONE') return { entry: { kind: 'none' } };
  const key = isObject(raw) && Object.keys(raw).length === 1 ? (Object.keys(raw)[0] as string) : undefined;
  if (key === 'require-all' || (key !== undefined && AT_LEAST.test(key))) {
    return parseGroup(key, (raw as Record<string, unknown>)[key], permission);
  }
  const leaf = parseLeaf(raw, permission);
  return 'entry' in leaf ? leaf : { problems: [{ path: [], message: leaf.problem }] };
}

export interface Problem {
  path: Array<string | number>;
  message: string;
}

function parseGroup(
  label: string,
  members: unknown,
  permission: Permission,
): { entry: AccessEntry } | { problems: Problem[] } {
  if (permission === 'read') {
    return { problems: [{ path: [label], message: `${label} is allowed only in update and create_sessions` }] };
  }
  if (!Array.isArray(members) || members.length === 0) {
    return { problems: [{ path: [label], message: `${label} takes a non-empty list of entries` }] };
  }
  const need = label === 'require-all' ? members.length : Number(AT_LEAST.exec(label)?.[1]);
  const problems: Problem[] = [];
  if (need > members.length) {
    const message = `${label} needs ${need} members, but lists only ${members.length}`;
    problems.push({ path: [label], message });
  }
  const parsed = groupMembers(label, members, permission, problems);
  return problems.length > 0 ? { problems } : { entry: { kind: 'group', label, need, members: parsed } };
}

function groupMembers(label: string, members: unknown[], permission: Permission, problems: Problem[]): LeafEntry[] {
  const out: LeafEntry[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of members.entries()) {
    const leaf = isObject(raw) && !('signer' in raw) ? { problem: nestedProblem(label) } : parseLeaf(raw, permission);
    if ('problem' in leaf) {
      problems.push({ path: [label, i], message: leaf.problem });
      continue;
    }
    const id = identityKey(leaf.entry);
    if (seen.has(id)) problems.push({ path: [label, i], message: `names the same identity twice in ${label}` });
    seen.add(id);
    out.push(leaf.entry);
  }
  return out;
}

const nestedProblem = (label: string) =>
  `a group nested in ${label} is not supported by Veil (groups do not nest): list plain entries ` +
  '(certificates, key hashes, CREATOR, $$SCONE::secret$$, signers)';

/** What makes two members the same identity within one group (before CREATOR or secrets are resolved). */
function identityKey(entry: LeafEntry): string {
  switch (entry.kind) {
    case 'creator':
      return 'creator';
    case 'secret':
      return `secret:${entry.name}`;
    default:
      return `key:${entry.keyHash}`;
  }
}

const listCache = new WeakMap<object, Partial<Record<Permission, AccessEntry[]>>>();

/**
 * The typed entries of a list that passed the schema, parsed once per list object and permission (a parsed
 * session is cached by the CAS, so once per stored version). An entry that does not parse names nobody.
 */
export function accessEntries(list: readonly unknown[], permission: Permission): AccessEntry[] {
  let byPermission = listCache.get(list);
  if (!byPermission) {
    byPermission = {};
    listCache.set(list, byPermission);
  }
  const hit = byPermission[permission];
  if (hit) return hit;
  const entries = list.map((raw): AccessEntry => {
    const parsed = parseEntry(raw, permission);
    return 'entry' in parsed ? parsed.entry : { kind: 'nobody' };
  });
  byPermission[permission] = entries;
  return entries;
}

/** Entries of a list, group members counted: what the limit `accessEntries` bounds. */
export function countEntries(list: readonly unknown[]): number {
  let count = 0;
  for (const raw of list) {
    count++;
    if (isObject(raw)) {
      for (const value of Object.values(raw)) if (Array.isArray(value)) count += value.length;
    }
  }
  return count;
}

/**
 * A signer's key hash, over its SPKI with an EC point uncompressed: a compressed point re-exports compressed,
 * so the same key would have two hashes and count as two members of a require-at-least-N group.
 */
export function signerKeyHashOf(key: KeyObject): string {
  const canonical =
    key.asymmetricKeyType === 'ec' ? createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }) : key;
  return sha256Hex(canonical.export({ type: 'spki', format: 'der' }));
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
