import { base32, pemEncode } from './encodings.js';
import { SecretsError } from './errors.js';
import type { SecretLookup, StoredSecret } from './types.js';

type Certificate = Extract<StoredSecret, { kind: 'x509' | 'x509-ca' }>;

/**
 * A secret in the form a placeholder suffix asks for (session language §4.3). Text forms come back as
 * strings, DER and raw bytes as Buffers.
 */
export function renderSecret(name: string, suffix: string, lookup: SecretLookup): string | Buffer {
  const secret = lookup(name);
  if (!secret) throw renderError(name, suffix, 'is not available to this session');
  switch (secret.kind) {
    case 'ascii':
      return bytesForm(name, suffix, Buffer.from(secret.value, 'utf8'), secret.value);
    case 'binary':
      return bytesForm(name, suffix, Buffer.from(secret.value, 'hex'));
    case 'private-key':
      return keyForm(name, suffix, Buffer.from(secret.value, 'base64'));
    default:
      return certificateForm(name, suffix, secret, lookup);
  }
}

function renderError(name: string, suffix: string, why: string): SecretsError {
  return new SecretsError('SECRET_RENDER', `cannot render $$SCONE::${name}${suffix}$$: secret '${name}' ${why}`, {
    hint: 'check the placeholder suffix against the secret kind (session language §4.3)',
  });
}

function bytesForm(name: string, suffix: string, bytes: Buffer, text?: string): string | Buffer {
  switch (suffix) {
    case '':
      return text ?? bytes;
    case ':bin':
      return bytes;
    case ':hex':
    case '.hex':
      return bytes.toString('hex');
    case ':base64':
      return bytes.toString('base64');
    case ':base64url':
      return bytes.toString('base64url');
    case ':base32':
      return base32(bytes);
    case ':base32nopad':
      return base32(bytes, false);
    default:
      throw renderError(name, suffix, 'has no such form');
  }
}

function keyForm(name: string, suffix: string, pkcs8: Buffer): string | Buffer {
  if (['', ':pem', ':pkcs8:pem', ':privatekey', ':privatekey:pem', ':privatekey:pkcs8:pem', '.key'].includes(suffix)) {
    return pemEncode('PRIVATE KEY', pkcs8);
  }
  if ([':der', ':pkcs8:der', ':privatekey:der', ':privatekey:pkcs8:der'].includes(suffix)) return pkcs8;
  throw renderError(name, suffix, 'is a private key, which has no such form');
}

function certificateForm(name: string, suffix: string, cert: Certificate, lookup: SecretLookup): string | Buffer {
  const der = Buffer.from(cert.value, 'base64');
  if (['', '.crt', ':crt', ':crt:pem'].includes(suffix)) return pemEncode('CERTIFICATE', der);
  if (suffix === ':crt:der') return der;
  if (suffix === ':chain') return issuers(name, cert, lookup).map((d) => pemEncode('CERTIFICATE', d)).join('');
  // The legacy chain runs the other way, root first, and includes the certificate itself.
  if (suffix === '.chain') return [...issuers(name, cert, lookup).reverse(), der].map((d) => pemEncode('CERTIFICATE', d)).join('');
  if (suffix === '.key' || suffix.startsWith(':privatekey')) {
    if (!cert.privateKey) throw renderError(name, suffix, 'has no private key available');
    const key = lookup(cert.privateKey);
    if (!key || key.kind !== 'private-key') throw renderError(name, suffix, 'has no private key available');
    return keyForm(name, suffix, Buffer.from(key.value, 'base64'));
  }
  throw renderError(name, suffix, 'is a certificate, which has no such form');
}

/** The issuing CAs from the direct issuer up to the root (bounded, so a corrupt loop cannot hang). */
function issuers(name: string, cert: Certificate, lookup: SecretLookup): Buffer[] {
  const chain: Buffer[] = [];
  let current: Certificate = cert;
  while (current.issuer && chain.length < 16) {
    const next = lookup(current.issuer);
    if (!next || (next.kind !== 'x509' && next.kind !== 'x509-ca')) throw renderError(name, ':chain', `has an issuer '${current.issuer}' that is not available`);
    chain.push(Buffer.from(next.value, 'base64'));
    current = next;
  }
  return chain;
}
