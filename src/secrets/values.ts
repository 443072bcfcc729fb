import { randomBytes } from 'node:crypto';
import { SecretsError } from './errors.js';
import { generatePrivateKeyAsync, parsePrivateKeyPem, type PrivateKeyMaterial } from './keys.js';
import type { SecretSpec, StoredSecret } from './types.js';

/** ascii, binary and private-key secrets: generated, or taken from an explicit `value` after checking it. */

export const DEFAULT_SIZE = 20;
const MAX_SIZE = 65536;

export function sizeOf(spec: SecretSpec): number {
  const size = spec.size ?? DEFAULT_SIZE;
  if (Number.isInteger(size) && size >= 1 && size <= MAX_SIZE) return size;
  throw new SecretsError('SECRET_INVALID_VALUE', `size ${size} of secret '${spec.name}' is out of range`, {
    hint: `give a whole number from 1 to ${MAX_SIZE}`,
  });
}

/**
 * `size` printable ASCII characters without space (0x21–0x7e, 94 of them), uniformly: bytes ≥ 188 (2 × 94)
 * are dropped, so `byte % 94` has no modulo bias.
 */
export function randomAscii(size: number): string {
  let out = '';
  while (out.length < size) {
    for (const byte of randomBytes(size - out.length + 8)) {
      if (byte < 188 && out.length < size) out += String.fromCharCode(0x21 + (byte % 94));
    }
  }
  return out;
}

export function asciiSecret(spec: SecretSpec): StoredSecret {
  if (spec.value === undefined) return { kind: 'ascii', value: randomAscii(sizeOf(spec)) };
  if (typeof spec.value !== 'string') throw invalid(spec, 'is not a string', 'quote the value');
  return { kind: 'ascii', value: spec.value };
}

export function binarySecret(spec: SecretSpec): StoredSecret {
  if (spec.value === undefined) return { kind: 'binary', value: randomBytes(sizeOf(spec)).toString('hex') };
  if (typeof spec.value !== 'string') throw invalid(spec, 'is not hex', 'give binary values as hex digits');
  const hex = spec.value.trim();
  if (!/^([0-9a-fA-F]{2})*$/.test(hex))
    throw invalid(spec, 'is not hex', 'give binary values as an even number of hex digits');
  return { kind: 'binary', value: hex.toLowerCase() };
}

/** A private key: generated (RSA off the event loop), or read from an explicit PEM `value` and checked. */
export async function privateKeySecret(spec: SecretSpec): Promise<StoredSecret> {
  if (spec.value === undefined) return generatedKeySecret(spec);
  if (typeof spec.value !== 'string') throw invalid(spec, 'is not a PEM private key', 'give a PKCS#8 PEM');
  const material = parsePrivateKeyPem(spec.value, `secret '${spec.name}'`);
  if (spec.key_type !== undefined && spec.key_type !== material.keyType) {
    throw invalid(
      spec,
      `is a ${material.keyType} key, but key_type says ${spec.key_type}`,
      'make key_type match the key, or drop it',
    );
  }
  return stored(material);
}

export async function generatedKeySecret(spec: SecretSpec): Promise<StoredSecret> {
  return stored(await generatePrivateKeyAsync(spec.key_type ?? 'P-256'));
}

function stored(material: PrivateKeyMaterial): StoredSecret {
  return { kind: 'private-key', keyType: material.keyType, value: material.pkcs8.toString('base64') };
}

/** The message says what is wrong with the value, never what the value is. */
function invalid(spec: SecretSpec, what: string, hint: string): SecretsError {
  return new SecretsError('SECRET_INVALID_VALUE', `the value of ${spec.kind} secret '${spec.name}' ${what}`, { hint });
}

/**
 * A config-fragment is kept as JSON: its value was checked by the session schema (any YAML), and what it is
 * filled into is checked again, with the section's own schema, once it is filled in.
 */
export function fragmentSecret(spec: SecretSpec): StoredSecret {
  if (spec.value === undefined || (typeof spec.value === 'string' && spec.value === ''))
    throw invalid(spec, 'is missing', 'give the fragment as a YAML value (a map or a list), or import it');
  return { kind: 'config-fragment', value: JSON.stringify(spec.value) };
}
