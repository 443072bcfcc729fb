import { X509Certificate, randomBytes, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { pemDecodeAll } from './encodings.js';
import { SecretsError } from './errors.js';
import { generatePrivateKey, parsePrivateKeyPem, type PrivateKeyMaterial } from './keys.js';
import type { SecretSpec, StoredSecret } from './types.js';
import { issueCertificate, parseValidFor } from './x509.js';

export interface GenerateOptions {
  now: Date;
  /** Resolves an imported secret (an issuer from another session); undefined when it cannot be had. */
  resolveImport?: ((name: string) => StoredSecret | undefined) | undefined;
}

interface Previous {
  specs: SecretSpec[];
  values: Map<string, StoredSecret>;
}

const DEFAULT_SIZE = 20;
const YEAR_S = 365 * 24 * 3600;

/**
 * Every secret a session defines, in dependency order: keys first, then certificates, each issuer before what
 * it signs. Update rules (session language §4.3): ascii and binary keep their values, a private key is kept
 * only with `migrate: true` on both versions, certificates are always issued anew.
 */
export function generateSecretSet(specs: SecretSpec[], previous: Previous | undefined, opts: GenerateOptions): Map<string, StoredSecret> {
  const out = new Map<string, StoredSecret>();
  const byName = new Map(specs.map((s) => [s.name, s]));
  const visiting = new Set<string>();
  const produce = (name: string): StoredSecret | undefined => {
    const spec = byName.get(name);
    if (!spec) return undefined;
    if (spec.import) return opts.resolveImport?.(name);
    const done = out.get(name);
    if (done) return done;
    if (visiting.has(name)) throw new SecretsError('SECRET_DEPENDENCY', `secret '${name}' depends on itself through its issuer`);
    visiting.add(name);
    const value = kept(spec, previous) ?? generateOne(spec, produce, opts);
    out.set(name, value);
    return value;
  };
  for (const spec of specs) if (!spec.import) produce(spec.name);
  return out;
}

function kept(spec: SecretSpec, previous: Previous | undefined): StoredSecret | undefined {
  const old = previous?.values.get(spec.name);
  const oldSpec = previous?.specs.find((s) => s.name === spec.name);
  if (!old || !oldSpec || oldSpec.kind !== spec.kind || spec.value !== undefined || oldSpec.value !== undefined) return undefined;
  if (spec.kind === 'ascii' || spec.kind === 'binary') return (oldSpec.size ?? DEFAULT_SIZE) === (spec.size ?? DEFAULT_SIZE) ? old : undefined;
  if (spec.kind === 'private-key' && spec.migrate && oldSpec.migrate && (oldSpec.key_type ?? 'P-256') === (spec.key_type ?? 'P-256')) return old;
  return undefined;
}

type Produce = (name: string) => StoredSecret | undefined;

function generateOne(spec: SecretSpec, produce: Produce, opts: GenerateOptions): StoredSecret {
  switch (spec.kind) {
    case 'ascii':
      return { kind: 'ascii', value: spec.value ?? randomAscii(spec.size ?? DEFAULT_SIZE) };
    case 'binary':
      return { kind: 'binary', value: spec.value !== undefined ? hexValue(spec) : randomBytes(spec.size ?? DEFAULT_SIZE).toString('hex') };
    case 'private-key':
      return privateKey(spec);
    case 'x509':
    case 'x509-ca':
      return certificate(spec, produce, opts);
    default:
      throw new SecretsError('SECRET_UNSUPPORTED', `secret '${spec.name}' has no kind the CAS can generate`, { hint: 'set kind: ascii, binary, private-key, x509 or x509-ca' });
  }
}

/** Printable ASCII without space (0x21–0x7e); randomInt draws without modulo bias. */
export function randomAscii(size: number): string {
  let out = '';
  for (let i = 0; i < size; i++) out += String.fromCharCode(0x21 + randomInt(94));
  return out;
}

function hexValue(spec: SecretSpec): string {
  const text = String(spec.value).trim();
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) {
    throw new SecretsError('SECRET_INVALID_VALUE', `the value of binary secret '${spec.name}' is not hex`, { hint: 'give binary values as an even number of hex digits' });
  }
  return text.toLowerCase();
}

function privateKey(spec: SecretSpec): StoredSecret {
  const material = spec.value !== undefined ? parsePrivateKeyPem(spec.value, `secret '${spec.name}'`) : generatePrivateKey(spec.key_type ?? 'P-256');
  return { kind: 'private-key', keyType: material.keyType, value: material.pkcs8.toString('base64') };
}

function keyOf(name: string, produce: Produce, owner: string): PrivateKeyMaterial {
  const key = produce(name);
  if (!key || key.kind !== 'private-key') {
    throw new SecretsError('SECRET_DEPENDENCY', `secret '${owner}' names private_key '${name}', which is not an available private key`, {
      hint: 'define it with kind: private-key (or import it from a session that exports it)',
    });
  }
  return { keyType: key.keyType, pkcs8: Buffer.from(key.value, 'base64') };
}

function certificate(spec: SecretSpec, produce: Produce, opts: GenerateOptions): StoredSecret {
  const kind = spec.kind as 'x509' | 'x509-ca';
  if (spec.value !== undefined) return explicitCertificate(spec, kind);
  if (!spec.private_key) {
    throw new SecretsError('SECRET_DEPENDENCY', `certificate '${spec.name}' has no private_key`, { hint: 'name a private-key secret in private_key' });
  }
  const subjectKey = keyOf(spec.private_key, produce, spec.name);
  const issuer = spec.issuer ? issuerOf(spec, produce) : undefined;
  const { dns, ips } = namesOf(spec);
  const lifetime = spec.valid_for ? parseValidFor(spec.valid_for) : YEAR_S;
  if (lifetime === undefined) {
    throw new SecretsError('SECRET_INVALID_VALUE', `valid_for '${spec.valid_for}' of '${spec.name}' is not a duration`, { hint: 'e.g. "1 year", "59d", "12 hours"' });
  }
  const der = issueCertificate({
    subjectKey,
    issuer,
    commonName: spec.common_name ?? dns[0] ?? spec.name,
    dns,
    ips,
    isCa: kind === 'x509-ca',
    endpoint: spec.endpoint,
    notBefore: new Date(opts.now.getTime() - 60_000),
    notAfter: new Date(opts.now.getTime() + lifetime * 1000),
  });
  return { kind, value: der.toString('base64'), privateKey: spec.private_key, ...(spec.issuer ? { issuer: spec.issuer } : {}) };
}

function issuerOf(spec: SecretSpec, produce: Produce): { certDer: Buffer; key: PrivateKeyMaterial } {
  const ca = produce(spec.issuer!);
  if (!ca) {
    throw new SecretsError('SECRET_IMPORT_MISSING', `the issuer '${spec.issuer}' of certificate '${spec.name}' is not available`, {
      hint: 'an imported issuer must exist and be exported, with its private key, to this session',
    });
  }
  if (ca.kind !== 'x509-ca' || !ca.privateKey) {
    throw new SecretsError('SECRET_DEPENDENCY', `the issuer '${spec.issuer}' of '${spec.name}' is not a CA with a private key`, { hint: 'issuer must name an x509-ca secret' });
  }
  return { certDer: Buffer.from(ca.value, 'base64'), key: keyOf(ca.privateKey, produce, spec.issuer!) };
}

function namesOf(spec: SecretSpec): { dns: string[]; ips: string[] } {
  const dns = [...(spec.dns ?? [])];
  const ips: string[] = [];
  for (const entry of spec.san ?? []) {
    const [type, ...rest] = entry.split(':');
    const value = rest.join(':');
    if (type === 'ip' && isIP(value)) ips.push(value);
    else if (type === 'dns') dns.push(value);
  }
  return { dns, ips };
}

function explicitCertificate(spec: SecretSpec, kind: 'x509' | 'x509-ca'): StoredSecret {
  const der = pemDecodeAll(String(spec.value), 'CERTIFICATE')[0];
  try {
    if (!der) throw new Error('no certificate');
    new X509Certificate(der);
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', `the value of certificate '${spec.name}' is not a PEM certificate`, { hint: 'give a "BEGIN CERTIFICATE" PEM', cause: err });
  }
  return { kind, value: der.toString('base64'), ...(spec.private_key ? { privateKey: spec.private_key } : {}), ...(spec.issuer ? { issuer: spec.issuer } : {}) };
}

