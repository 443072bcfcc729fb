import {
  createECDH,
  createHash,
  type ECDH,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { KEY_TYPES, type KeyType } from '../key-types.js';
import { Lru } from '../lru.js';
import { pemBlocks } from './encodings.js';
import { SecretsError } from './errors.js';
import {
  ecPkcs8,
  ecSpki,
  ed25519Pkcs8,
  ed25519Spki,
  leftPad,
  parsePkcs8,
  type EcCurve,
  type ParsedPkcs8,
} from './key-der.js';
import { Slots } from './slots.js';

export { KEY_TYPES, type KeyType };

export interface PrivateKeyMaterial {
  keyType: KeyType;
  /** PKCS#8 DER. */
  pkcs8: Buffer;
}

const keyObjects = new Lru<KeyObject>(256);
/** Public keys OpenSSL had to derive (Ed25519, RSA); EC public keys are read from the PKCS#8 itself. */
const spkis = new Lru<Buffer>(1024);

/** Keyed by a hash so the caches' keys hold no private key material, and equal keys from fresh buffers hit. */
function cacheKey(pkcs8: Buffer): string {
  return createHash('sha256').update(pkcs8).digest('base64');
}

/**
 * EC keys come from ECDH as raw numbers and are DER-encoded here. Not `generateKeyPairSync` + `export({format:
 * 'jwk'})`: in Node 20 that export holds the key's mutex while it allocates strings, a garbage collection there
 * finalises the generation job, whose destructor takes the same mutex, and the process hangs (EC and Ed25519,
 * within a few thousand keys). ECDH is also the fastest generator (70k P-256 keys/s against 25k). Ed25519 asks
 * the generator itself for JWK, which is encoded inside the job and so never meets that lock.
 *
 * Only the key types that cost microseconds (P-256 14 µs, Ed25519 45 µs measured): an RSA key takes 0.2–0.8 s
 * and would stall every other client of the thread that made it, so RSA has only `generatePrivateKeyAsync`.
 */
export function generatePrivateKey(keyType: KeyType = 'P-256'): PrivateKeyMaterial {
  switch (keyType) {
    case 'P-256':
    case 'P-384':
      return generateEc(keyType);
    case 'Ed25519':
      return generateEd25519();
    case 'RSA-2048':
    case 'RSA-3072': {
      const what = `${keyType} keys are not made on the calling thread (up to a second each)`;
      throw new SecretsError('SECRET_UNSUPPORTED', what, {
        hint: 'use generatePrivateKeyAsync, which generates RSA keys in the thread pool',
      });
    }
    default:
      throw unsupportedType(keyType);
  }
}

/** Any supported key; RSA in libuv's thread pool, the fast types on this thread (a hop to the pool costs more). */
export async function generatePrivateKeyAsync(keyType: KeyType = 'P-256'): Promise<PrivateKeyMaterial> {
  if (keyType === 'RSA-2048' || keyType === 'RSA-3072') return rsaSlots.run(() => generateRsa(keyType));
  return generatePrivateKey(keyType);
}

function unsupportedType(keyType: unknown): SecretsError {
  const hint = `use one of ${KEY_TYPES.join(', ')}`;
  return new SecretsError('SECRET_UNSUPPORTED', `key type '${String(keyType)}' is not supported`, { hint });
}

/** One ECDH object per curve, reused: each generateKeys() makes a fresh key, and construction costs 15%. */
const ecdhByCurve: Record<EcCurve, ECDH> = { 'P-256': createECDH('prime256v1'), 'P-384': createECDH('secp384r1') };

function generateEc(curve: EcCurve): PrivateKeyMaterial {
  const ecdh = ecdhByCurve[curve];
  const point = ecdh.generateKeys();
  return { keyType: curve, pkcs8: ecPkcs8(curve, ecdh.getPrivateKey(), point) };
}

const JWK = { format: 'jwk' } as const;

function generateEd25519(): PrivateKeyMaterial {
  const pair = generateKeyPairSync('ed25519', { publicKeyEncoding: JWK, privateKeyEncoding: JWK }) as unknown as {
    privateKey: JsonWebKey;
  };
  const pkcs8 = ed25519Pkcs8(Buffer.from(pair.privateKey.d!, 'base64url'));
  spkis.set(cacheKey(pkcs8), ed25519Spki(Buffer.from(pair.privateKey.x!, 'base64url')));
  return { keyType: 'Ed25519', pkcs8 };
}

/**
 * RSA generations in the pool at once, for the whole process: one core stays for the event loop, and of
 * libuv's 4 pool threads (shared with file system calls, DNS look-ups and other crypto) at least two stay free,
 * however many RSA keys are asked for.
 */
export const RSA_GENERATIONS_AT_ONCE = Math.min(2, Math.max(1, availableParallelism() - 1));
const rsaSlots = new Slots(RSA_GENERATIONS_AT_ONCE);
const generateKeyPairInPool = promisify(generateKeyPair);

/** RSA keygen costs far more than its DER export, so Node's encoder is fine here. */
async function generateRsa(keyType: 'RSA-2048' | 'RSA-3072'): Promise<PrivateKeyMaterial> {
  const pair = await generateKeyPairInPool('rsa', {
    modulusLength: keyType === 'RSA-2048' ? 2048 : 3072,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  spkis.set(cacheKey(pair.privateKey), pair.publicKey);
  return { keyType, pkcs8: pair.privateKey };
}

function parsed(pkcs8: Buffer): ParsedPkcs8 {
  try {
    return parsePkcs8(pkcs8);
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', 'a private key is not well-formed PKCS#8 DER', {
      cause: err,
      hint: 'the stored key is damaged; regenerate it',
    });
  }
}

/** The signing KeyObject of a PKCS#8 key, decoded once per process (EC via JWK: 5× faster than DER). */
export function privateKeyObject(pkcs8: Buffer): KeyObject {
  const id = cacheKey(pkcs8);
  const hit = keyObjects.get(id);
  if (hit) return hit;
  const key = importPkcs8(pkcs8);
  keyObjects.set(id, key);
  return key;
}

function importPkcs8(pkcs8: Buffer): KeyObject {
  const p = parsed(pkcs8);
  try {
    if (p.type === 'ec' && p.point) return createPrivateKey({ key: ecJwk(p.curve, p.d, p.point), format: 'jwk' });
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', 'a private key could not be loaded', {
      cause: err,
      hint: 'the stored key is damaged; regenerate it',
    });
  }
}

function ecJwk(curve: EcCurve, d: Buffer, point: Buffer): JsonWebKey {
  const half = (point.length - 1) / 2;
  const b64 = (b: Buffer) => b.toString('base64url');
  return { kty: 'EC', crv: curve, d: b64(d), x: b64(point.subarray(1, 1 + half)), y: b64(point.subarray(1 + half)) };
}

/** The DER SubjectPublicKeyInfo of a PKCS#8 private key. */
export function publicKeySpki(pkcs8: Buffer): Buffer {
  const p = parsed(pkcs8);
  // A compressed point (0x02/0x03) is re-encoded uncompressed below: one key, one key hash (spkiOfPublicKey).
  if (p.type === 'ec' && p.point?.[0] === 4) return ecSpki(p.curve, p.point);
  const id = cacheKey(pkcs8);
  const hit = spkis.get(id);
  if (hit) return hit;
  const spki = spkiOfPublicKey(createPublicKey(privateKeyObject(pkcs8)));
  spkis.set(id, spki);
  return spki;
}

/**
 * The DER SubjectPublicKeyInfo of a public key (a peer's certificate key, say), in one encoding per key: an EC
 * point uncompressed (a compressed point re-exports compressed, so one key would have two key hashes). P-256,
 * P-384 and Ed25519 are encoded here from the key's JWK (≈ 40 µs for a certificate's fresh key); OpenSSL's SPKI
 * encoder costs ≈ 140 µs, once per attestation on the CAS (every runtime connects with a fresh key). Other keys
 * are OpenSSL's own export. The key is the one OpenSSL verified in the handshake: never read the SPKI from the
 * certificate's bytes with another parser (docs/architecture.md, client identity). Callers pass keys parsed from
 * certificates, PEM or DER: on Node 20 the JWK export of a KeyObject straight from generateKeyPair(Sync) can
 * deadlock the process if a garbage collection meanwhile destroys the job that made it (both take the key's lock).
 */
export function spkiOfPublicKey(key: KeyObject): Buffer {
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'ed25519') return key.export({ type: 'spki', format: 'der' });
  let jwk: JsonWebKey;
  try {
    jwk = key.export({ format: 'jwk' });
  } catch {
    // A curve JWK has no name for (brainpool, explicit parameters): OpenSSL's own encoding.
    return key.export({ type: 'spki', format: 'der' });
  }
  if (type === 'ed25519') return ed25519Spki(Buffer.from(jwk.x ?? '', 'base64url'));
  const curve = jwk.crv === 'P-256' || jwk.crv === 'P-384' ? jwk.crv : undefined;
  if (!curve) return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  const size = curve === 'P-256' ? 32 : 48;
  const x = leftPad(Buffer.from(jwk.x ?? '', 'base64url'), size);
  const y = leftPad(Buffer.from(jwk.y ?? '', 'base64url'), size);
  return ecSpki(curve, Buffer.concat([Buffer.from([4]), x, y]));
}

/** Hex SHA-256 of a DER SubjectPublicKeyInfo: the "key hash" that names an identity in access policies. */
export function keyHash(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

const PEM_TYPES: Record<string, 'pkcs8' | 'sec1'> = { 'PRIVATE KEY': 'pkcs8', 'EC PRIVATE KEY': 'sec1' };

/**
 * An explicit `value:` of a private-key secret: PKCS#8 or SEC1 EC PEM of a supported key type, returned as
 * PKCS#8 re-encoded by OpenSSL (so an EC key always carries its public key, which the fast paths read).
 */
export function parsePrivateKeyPem(pem: string, name = 'the private key'): PrivateKeyMaterial {
  const block = pemBlocks(String(pem)).find((b) => b.label.endsWith('PRIVATE KEY'));
  const type = block ? PEM_TYPES[block.label] : undefined;
  if (!block || !type) throw pemRefused(name, block?.label);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: block.der, format: 'der', type });
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', `the value of ${name} is not a readable ${block.label} PEM`, {
      cause: err,
      hint: PEM_HINT,
    });
  }
  const keyType = keyTypeOf(key, name);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  keyObjects.set(cacheKey(pkcs8), key);
  return { keyType, pkcs8 };
}

const PEM_HINT =
  'give a PKCS#8 ("BEGIN PRIVATE KEY") or SEC1 EC ("BEGIN EC PRIVATE KEY") PEM, or omit value to have the CAS generate the key';

function pemRefused(name: string, label: string | undefined): SecretsError {
  if (label === undefined)
    return new SecretsError('SECRET_INVALID_VALUE', `the value of ${name} is not a PEM private key`, {
      hint: PEM_HINT,
    });
  if (label === 'ENCRYPTED PRIVATE KEY') {
    return new SecretsError('SECRET_UNSUPPORTED', `the value of ${name} is an encrypted private key`, {
      hint: 'decrypt it first (openssl pkey -in key.pem -out plain.pem)',
    });
  }
  return new SecretsError(
    'SECRET_UNSUPPORTED',
    `the value of ${name} is a "${label}" PEM, which the CAS does not read`,
    {
      hint: 'convert it to PKCS#8: openssl pkcs8 -topk8 -nocrypt -in key.pem',
    },
  );
}

function keyTypeOf(key: KeyObject, name: string): KeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'P-256';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return 'P-384';
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength === 2048 || details.modulusLength === 3072))
    return `RSA-${details.modulusLength}`;
  const what = [key.asymmetricKeyType, details.namedCurve, details.modulusLength]
    .filter((v) => v !== undefined)
    .join(' ');
  throw new SecretsError('SECRET_UNSUPPORTED', `${name} is a ${what} key, a type the CAS does not support`, {
    hint: `use one of ${KEY_TYPES.join(', ')}`,
  });
}
