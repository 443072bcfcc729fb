import { createECDH, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { bitString, ctx, int, octets, oid, seq } from './der.js';
import { SecretsError } from './errors.js';

export type KeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA-2048' | 'RSA-3072';
export const KEY_TYPES: readonly KeyType[] = ['P-256', 'P-384', 'Ed25519', 'RSA-2048', 'RSA-3072'];

export interface PrivateKeyMaterial {
  keyType: KeyType;
  /** PKCS#8 DER. */
  pkcs8: Buffer;
}

const CURVE_OID: Record<string, string> = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34' };
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** Public keys and key objects this process has derived, so a CA key is decoded once, not per signature. */
const spkiCache = boundedMap<Buffer>();
/** Raw components of keys generated here: importing them as JWK is 5× faster than decoding PKCS#8 DER. */
const rawCache = boundedMap<{ crv: string; d: Buffer; point: Buffer }>();
const keyCache = boundedMap<KeyObject>();

function boundedMap<V>(limit = 2048) {
  const map = new Map<string, V>();
  return {
    get: (k: string) => map.get(k),
    set: (k: string, v: V) => {
      if (map.size >= limit) map.clear();
      map.set(k, v);
    },
  };
}

/**
 * EC keys come from ECDH key generation as raw numbers and are encoded here: Node 20 can deadlock when a JWK
 * export of a generated EC key meets a garbage collection, and its DER export is slow. A KeyObject is made
 * only when the key signs (CAs), since a leaf key never does inside the CAS.
 */
export function generatePrivateKey(keyType: KeyType = 'P-256'): PrivateKeyMaterial {
  if (keyType === 'P-256' || keyType === 'P-384') return generateEc(keyType);
  const pair =
    keyType === 'Ed25519'
      ? generateKeyPairSync('ed25519', { publicKeyEncoding: SPKI, privateKeyEncoding: PKCS8 })
      : generateKeyPairSync('rsa', { modulusLength: keyType === 'RSA-2048' ? 2048 : 3072, publicKeyEncoding: SPKI, privateKeyEncoding: PKCS8 });
  spkiCache.set(pair.privateKey.toString('base64'), pair.publicKey);
  return { keyType, pkcs8: pair.privateKey };
}

const SPKI = { type: 'spki', format: 'der' } as const;
const PKCS8 = { type: 'pkcs8', format: 'der' } as const;

const ECDH_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' } as const;
const SCALAR_BYTES = { 'P-256': 32, 'P-384': 48 } as const;

function generateEc(keyType: 'P-256' | 'P-384'): PrivateKeyMaterial {
  const ecdh = createECDH(ECDH_CURVE[keyType]);
  const point = ecdh.generateKeys();
  const d = leftPad(ecdh.getPrivateKey(), SCALAR_BYTES[keyType]);
  const built = ecDer(keyType, d, point);
  const id = built.pkcs8.toString('base64');
  spkiCache.set(id, built.spki);
  rawCache.set(id, { crv: keyType, d, point });
  return { keyType, pkcs8: built.pkcs8 };
}

function leftPad(bytes: Buffer, size: number): Buffer {
  return bytes.length >= size ? bytes : Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
}

function ecDer(keyType: KeyType, d: Buffer, point: Buffer): { pkcs8: Buffer; spki: Buffer } {
  const algorithm = seq(oid(EC_PUBLIC_KEY), oid(CURVE_OID[keyType]!));
  const ecPrivateKey = seq(int(1), octets(d), ctx(1, bitString(point)));
  return { pkcs8: seq(int(0), algorithm, octets(ecPrivateKey)), spki: seq(algorithm, bitString(point)) };
}

export function privateKeyObject(pkcs8: Buffer): KeyObject {
  const id = pkcs8.toString('base64');
  const hit = keyCache.get(id);
  if (hit) return hit;
  const raw = rawCache.get(id);
  const key = raw ? importRaw(raw) : createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  keyCache.set(id, key);
  return key;
}

function importRaw(raw: { crv: string; d: Buffer; point: Buffer }): KeyObject {
  const half = (raw.point.length - 1) / 2;
  const b64 = (b: Buffer) => b.toString('base64url');
  const jwk = { kty: 'EC', crv: raw.crv, d: b64(raw.d), x: b64(raw.point.subarray(1, 1 + half)), y: b64(raw.point.subarray(1 + half)) };
  return createPrivateKey({ key: jwk, format: 'jwk' });
}

export function publicKeySpki(pkcs8: Buffer): Buffer {
  const id = pkcs8.toString('base64');
  const hit = spkiCache.get(id);
  if (hit) return hit;
  const spki = createPublicKey(privateKeyObject(pkcs8)).export({ type: 'spki', format: 'der' });
  spkiCache.set(id, spki);
  return spki;
}

/** Hex SHA-256 of a DER SubjectPublicKeyInfo: the "key hash" that names an identity in access policies. */
export function keyHash(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

/** An explicit `value:` of a private-key secret: PKCS#8 or SEC1 EC PEM, of a supported type. */
export function parsePrivateKeyPem(pem: string, name = 'the key'): PrivateKeyMaterial {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', `the value of ${name} is not a PEM private key`, {
      hint: 'give a PKCS#8 ("BEGIN PRIVATE KEY") or EC ("BEGIN EC PRIVATE KEY") PEM, or omit value to let the CAS generate it',
      cause: err,
    });
  }
  const keyType = keyTypeOf(key, name);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  keyCache.set(pkcs8.toString('base64'), key);
  return { keyType, pkcs8 };
}

function keyTypeOf(key: KeyObject, name: string): KeyType {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return 'P-256';
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') return 'P-384';
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength === 2048 || details.modulusLength === 3072)) {
    return `RSA-${details.modulusLength}` as KeyType;
  }
  throw new SecretsError('SECRET_UNSUPPORTED', `${name} is a ${key.asymmetricKeyType} key of a kind the CAS does not support`, {
    hint: `use one of ${KEY_TYPES.join(', ')}`,
  });
}

