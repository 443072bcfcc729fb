import { X509Certificate } from 'node:crypto';
import { parseValidFor, subjectNames } from './cert-fields.js';
import { certificateParts } from './der-read.js';
import { pemDecode } from './encodings.js';
import { SecretsError } from './errors.js';
import { publicKeySpki, type PrivateKeyMaterial } from './keys.js';
import type { SecretSpec, StoredCertificate, StoredPrivateKey, StoredSecretWithKey } from './types.js';
import { issueCertificateAsync } from './x509.js';

/** How a certificate reaches the keys and CAs it names. */
export interface Dependencies {
  /** A secret of this session (generated on demand) or an import as resolved; undefined if neither. */
  get(name: string): Promise<StoredSecretWithKey | undefined>;
  /** Whether the session defines `name` as an import (a missing import is reported as such). */
  isImport(name: string): boolean;
  now: Date;
}

/**
 * Backdated a little, so a peer whose clock lags behind the CAS's still accepts a fresh certificate; by a tenth of
 * the lifetime at most, so a short-lived one (valid_for "20s") is not at two thirds of it, due for renewal, at once.
 */
const BACKDATE_MS = 60_000;
const BACKDATE_SHARE = 0.1;

type CertificateKind = 'x509' | 'x509-ca';

export async function certificateSecret(
  spec: SecretSpec,
  kind: CertificateKind,
  deps: Dependencies,
): Promise<StoredCertificate> {
  if (spec.value !== undefined) return explicitCertificate(spec, kind, deps);
  if (!spec.private_key) {
    throw new SecretsError('SECRET_DEPENDENCY', `certificate '${spec.name}' has no private_key`, {
      hint: 'name a private-key secret in private_key',
    });
  }
  const { dns, ips } = subjectNames(spec.name, spec.dns, spec.san);
  const lifetimeMs = parseValidFor(spec.valid_for) * 1000;
  const der = await issueCertificateAsync({
    subjectKey: await keyNamed(spec.private_key, spec.name, deps),
    issuer: spec.issuer ? await issuerNamed(spec.issuer, spec.name, deps) : undefined,
    commonName: spec.common_name ?? dns[0] ?? spec.name,
    dns,
    ips,
    isCa: kind === 'x509-ca',
    endpoint: spec.endpoint,
    notBefore: new Date(deps.now.getTime() - Math.min(BACKDATE_MS, lifetimeMs * BACKDATE_SHARE)),
    notAfter: new Date(deps.now.getTime() + lifetimeMs),
  });
  return stored(spec, kind, der);
}

function stored(spec: SecretSpec, kind: 'x509' | 'x509-ca', der: Buffer): StoredCertificate {
  return {
    kind,
    value: der.toString('base64'),
    ...(spec.private_key ? { privateKey: spec.private_key } : {}),
    ...(spec.issuer ? { issuer: spec.issuer } : {}),
  };
}

function unavailable(name: string, role: string, owner: string, deps: Dependencies): SecretsError {
  if (deps.isImport(name)) {
    return new SecretsError(
      'SECRET_IMPORT_MISSING',
      `the ${role} '${name}' of '${owner}' is imported, but the import is not available`,
      {
        hint: `create the exporting session first, and export '${name}' to this session`,
      },
    );
  }
  return new SecretsError(
    'SECRET_DEPENDENCY',
    `'${owner}' names ${role} '${name}', which this session does not define`,
    { hint: `define secret '${name}'` },
  );
}

async function keyNamed(name: string, owner: string, deps: Dependencies): Promise<PrivateKeyMaterial> {
  const key = await deps.get(name);
  if (!key) throw unavailable(name, 'private_key', owner, deps);
  return asKey(key, name, owner);
}

function asKey(secret: StoredSecretWithKey, name: string, owner: string): PrivateKeyMaterial {
  if (secret.kind !== 'private-key') {
    throw new SecretsError(
      'SECRET_DEPENDENCY',
      `'${owner}' needs private key '${name}', which is a ${secret.kind} secret`,
      { hint: 'private_key must name a private-key secret' },
    );
  }
  return { keyType: secret.keyType, pkcs8: Buffer.from(secret.value, 'base64') };
}

type CaWithKey = StoredCertificate & { key?: StoredPrivateKey | undefined };
type Issuer = { certDer: Buffer; key: PrivateKeyMaterial };

async function caNamed(name: string, owner: string, deps: Dependencies): Promise<CaWithKey> {
  const ca = await deps.get(name);
  if (!ca) throw unavailable(name, 'issuer', owner, deps);
  if (ca.kind !== 'x509-ca') {
    throw new SecretsError(
      'SECRET_DEPENDENCY',
      `the issuer '${name}' of '${owner}' is a ${ca.kind} secret, not an x509-ca`,
      { hint: 'issuer must name an x509-ca secret' },
    );
  }
  return ca;
}

/** The CA certificate and its key; an imported CA brings its key along, or names one the resolver can find. */
async function issuerNamed(name: string, owner: string, deps: Dependencies): Promise<Issuer> {
  const ca = await caNamed(name, owner, deps);
  const key = ca.key ?? (ca.privateKey ? await deps.get(ca.privateKey) : undefined);
  if (!key) {
    throw new SecretsError(
      'SECRET_IMPORT_MISSING',
      `the issuer '${name}' of '${owner}' is available without its private key`,
      {
        hint: 'a CA signs here only if its private key is defined in, or exported to, this session as well',
      },
    );
  }
  return { certDer: Buffer.from(ca.value, 'base64'), key: asKey(key, ca.privateKey ?? name, owner) };
}

/** An explicit PEM certificate: it must parse, be a CA if it says so, and match its key and issuer. */
async function explicitCertificate(
  spec: SecretSpec,
  kind: CertificateKind,
  deps: Dependencies,
): Promise<StoredCertificate> {
  const der = pemDecode(String(spec.value), 'CERTIFICATE');
  const cert = der ? parseCertificate(der) : undefined;
  if (!der || !cert) throw invalid(spec, 'is not a PEM certificate', 'give a "BEGIN CERTIFICATE" PEM');
  if (!hasValidDates(cert)) {
    throw invalid(spec, 'has a notBefore or notAfter that is not a valid date', 'give a certificate with real dates');
  }
  if (kind === 'x509-ca' && !cert.ca)
    throw invalid(spec, 'is not a CA certificate', 'an x509-ca value needs basicConstraints CA:TRUE');
  const key = spec.private_key ? await keyNamed(spec.private_key, spec.name, deps) : undefined;
  if (spec.private_key && key && !certificateParts(der).spki.equals(publicKeySpki(key.pkcs8))) {
    throw invalid(
      spec,
      `is not the certificate of private_key '${spec.private_key}'`,
      'give the certificate issued for that key',
    );
  }
  const issuerCa = spec.issuer ? await caNamed(spec.issuer, spec.name, deps) : undefined;
  if (issuerCa && !cert.verify(new X509Certificate(Buffer.from(issuerCa.value, 'base64')).publicKey)) {
    throw invalid(
      spec,
      `is not signed by issuer '${spec.issuer}'`,
      'give a certificate that CA issued, or drop issuer',
    );
  }
  return stored(spec, kind, der);
}

function parseCertificate(der: Buffer): X509Certificate | undefined {
  try {
    certificateParts(der);
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

/** Node parses a time such as month 13 without complaint, and only `new Date` of it is invalid. */
function hasValidDates(cert: X509Certificate): boolean {
  return [cert.validFrom, cert.validTo].every((time) => !Number.isNaN(new Date(time).getTime()));
}

function invalid(spec: SecretSpec, what: string, hint: string): SecretsError {
  return new SecretsError('SECRET_INVALID_VALUE', `the value of certificate '${spec.name}' ${what}`, { hint });
}
