import { encodeBytes, pemEncode, type ByteEncoding } from './encodings.js';
import { SecretsError } from './errors.js';
import { pgpForm } from './pgp.js';
import type { SecretLookup, StoredCertificate, StoredPgpKey } from './types.js';

/**
 * A secret in the form a placeholder suffix asks for (session language §4.3). Text forms come back as
 * strings, DER and raw bytes as Buffers. `lookup` resolves any name, imports included.
 */
export function renderSecret(name: string, suffix: string, lookup: SecretLookup): string | Buffer {
  const secret = lookup(name);
  if (!secret) throw renderError(name, suffix, 'is not available to this session');
  switch (secret.kind) {
    case 'ascii':
      return suffix === '' ? secret.value : bytesForm(name, suffix, Buffer.from(secret.value, 'utf8'));
    case 'binary':
      return bytesForm(name, suffix, Buffer.from(secret.value, 'hex'));
    case 'private-key':
      return keyForm(name, suffix, Buffer.from(secret.value, 'base64'));
    case 'pgp-key':
      return pgpKeyForm(name, suffix, secret);
    case 'config-fragment':
      throw renderError(name, suffix, 'is a config-fragment, which fills attestation, security or access_policy');
    default:
      return certificateForm(name, suffix, secret, lookup);
  }
}

function renderError(name: string, suffix: string, why: string): SecretsError {
  return new SecretsError('SECRET_RENDER', `cannot render $$SCONE::${name}${suffix}$$: secret '${name}' ${why}`, {
    hint: 'check the placeholder suffix against the secret kind (session language §4.3)',
  });
}

const TEXT_ENCODINGS: Record<string, ByteEncoding> = {
  ':hex': 'hex',
  '.hex': 'hex',
  ':base64': 'base64',
  ':base64url': 'base64url',
  ':base32': 'base32',
  ':base32nopad': 'base32nopad',
};

function bytesForm(name: string, suffix: string, bytes: Buffer): string | Buffer {
  if (suffix === '' || suffix === ':bin') return bytes;
  const encoding = TEXT_ENCODINGS[suffix];
  if (!encoding) throw renderError(name, suffix, 'has no such form');
  return encodeBytes(bytes, encoding);
}

// A private key reached through its certificate (`.key`, `:privatekey…`) renders the same as the key itself.
const KEY_PEM = new Set(['', ':pem', ':pkcs8:pem', '.key', ':privatekey', ':privatekey:pem', ':privatekey:pkcs8:pem']);
const KEY_DER = new Set([':der', ':pkcs8:der', ':privatekey:der', ':privatekey:pkcs8:der']);

function keyForm(name: string, suffix: string, pkcs8: Buffer): string | Buffer {
  if (KEY_PEM.has(suffix)) return pemEncode('PRIVATE KEY', pkcs8);
  if (KEY_DER.has(suffix)) return pkcs8;
  throw renderError(name, suffix, 'is a private key, which has no such form');
}

/** The bare `$$SCONE::k$$` is the armored private key, as a private-key's bare placeholder is the key. */
function pgpKeyForm(name: string, suffix: string, key: StoredPgpKey): string | Buffer {
  const form = pgpForm(key, suffix === '' ? ':privatekey:asciiarmored' : suffix);
  if (form === undefined) throw renderError(name, suffix, 'is a pgp-key, which has no such form');
  return form;
}

const CERT_PEM = new Set(['', '.crt', ':crt', ':crt:pem']);
const CERT_KEY = new Set([
  '.key',
  ':privatekey',
  ':privatekey:pem',
  ':privatekey:pkcs8:pem',
  ':privatekey:der',
  ':privatekey:pkcs8:der',
]);
const pems = (ders: Buffer[]) => ders.map((d) => pemEncode('CERTIFICATE', d)).join('');

function certificateForm(name: string, suffix: string, cert: StoredCertificate, lookup: SecretLookup): string | Buffer {
  const der = Buffer.from(cert.value, 'base64');
  if (CERT_PEM.has(suffix)) return pemEncode('CERTIFICATE', der);
  if (suffix === ':crt:der') return der;
  if (suffix === ':chain') return pems(issuers(name, suffix, cert, lookup));
  // The legacy chain runs the other way, root first, and includes the certificate itself.
  if (suffix === '.chain') return pems([...issuers(name, suffix, cert, lookup).reverse(), der]);
  if (!CERT_KEY.has(suffix)) throw renderError(name, suffix, 'is a certificate, which has no such form');
  const key = cert.privateKey ? lookup(cert.privateKey) : undefined;
  if (key?.kind !== 'private-key') throw renderError(name, suffix, 'has no private key available to this session');
  return keyForm(name, suffix, Buffer.from(key.value, 'base64'));
}

/** Longer chains than this are taken for a loop in corrupt data rather than followed forever. */
const MAX_CHAIN = 32;

/** The issuing CAs, from the direct issuer up to the root. */
function issuers(name: string, suffix: string, cert: StoredCertificate, lookup: SecretLookup): Buffer[] {
  const chain: Buffer[] = [];
  for (let current = cert; current.issuer; ) {
    const next = lookup(current.issuer);
    if (!next || (next.kind !== 'x509' && next.kind !== 'x509-ca'))
      throw renderError(name, suffix, `has an issuer '${current.issuer}' that is not available`);
    if (chain.length === MAX_CHAIN)
      throw renderError(name, suffix, `has an issuer chain longer than ${MAX_CHAIN} (a loop?)`);
    chain.push(Buffer.from(next.value, 'base64'));
    current = next;
  }
  return chain;
}
