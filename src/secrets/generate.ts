import { certificateSecret, type Dependencies } from './certificates.js';
import { SecretsError } from './errors.js';
import type { SecretSpec, StoredSecret, StoredSecretWithKey } from './types.js';
import { asciiSecret, binarySecret, privateKeySecret, sizeOf } from './values.js';

export interface GenerateOptions {
  now: Date;
  /**
   * Resolves a secret this session does not generate: its imports (by their local names) and, for an imported
   * CA whose key is not attached, whatever name that CA gives for its key. Undefined when it cannot be had.
   */
  resolveImport?: ((name: string) => StoredSecretWithKey | undefined) | undefined;
}

export interface PreviousSecrets {
  specs: SecretSpec[];
  values: Map<string, StoredSecret>;
}

/** Generation order: plain values and keys, then CAs, then end-entity certificates (issuers still go first). */
const RANK: Record<string, number> = { ascii: 0, binary: 0, 'private-key': 1, 'x509-ca': 2, x509: 3 };

/**
 * Every secret a session defines, imports excepted, applying the update rules of session language §4.3
 * against the previous version: ascii and binary keep their values while kind and size stay, a private key
 * is kept only with `migrate: true` on both versions, certificates are always issued anew (so one whose key
 * or issuer changed is never left signed by the old one).
 */
export function generateSecretSet(specs: SecretSpec[], previous: PreviousSecrets | undefined, opts: GenerateOptions): Map<string, StoredSecret> {
  const generation = new Generation(specs, previous, opts);
  const order = specs.filter((s) => !s.import).sort((a, b) => (RANK[a.kind ?? ''] ?? 0) - (RANK[b.kind ?? ''] ?? 0));
  for (const spec of order) generation.get(spec.name);
  return generation.out;
}

class Generation implements Dependencies {
  readonly out = new Map<string, StoredSecret>();
  private readonly specs = new Map<string, SecretSpec>();
  private readonly started = new Set<string>();
  readonly now: Date;

  constructor(specs: SecretSpec[], private readonly previous: PreviousSecrets | undefined, private readonly opts: GenerateOptions) {
    for (const spec of specs) {
      if (this.specs.has(spec.name)) throw new SecretsError('SECRET_DEPENDENCY', `secret '${spec.name}' is defined twice`, { hint: 'give every secret its own name' });
      this.specs.set(spec.name, spec);
    }
    this.now = opts.now;
  }

  get(name: string): StoredSecretWithKey | undefined {
    const spec = this.specs.get(name);
    if (!spec || spec.import) return this.opts.resolveImport?.(name);
    return this.out.get(name) ?? this.generate(spec);
  }

  isImport(name: string): boolean {
    return this.specs.get(name)?.import !== undefined;
  }

  private generate(spec: SecretSpec): StoredSecret {
    if (this.started.has(spec.name)) {
      throw new SecretsError('SECRET_DEPENDENCY', `secret '${spec.name}' depends on itself (through issuer or private_key)`, { hint: 'break the cycle: a CA cannot be issued by a certificate it issues' });
    }
    this.started.add(spec.name);
    const value = kept(spec, this.previous) ?? generateOne(spec, this);
    this.out.set(spec.name, value);
    return value;
  }
}

function generateOne(spec: SecretSpec, deps: Dependencies): StoredSecret {
  switch (spec.kind) {
    case 'ascii':
      return asciiSecret(spec);
    case 'binary':
      return binarySecret(spec);
    case 'private-key':
      return privateKeySecret(spec);
    case 'x509':
    case 'x509-ca':
      return certificateSecret(spec, spec.kind, deps);
    default:
      throw new SecretsError('SECRET_UNSUPPORTED', `secret '${spec.name}' has no kind the CAS can generate`, { hint: 'set kind: ascii, binary, private-key, x509 or x509-ca' });
  }
}

/** The previous value, if the update rules keep it; explicit values are always taken anew from the policy. */
function kept(spec: SecretSpec, previous: PreviousSecrets | undefined): StoredSecret | undefined {
  const old = previous?.values.get(spec.name);
  const oldSpec = previous?.specs.find((s) => s.name === spec.name);
  if (!old || !oldSpec || oldSpec.import || spec.value !== undefined || oldSpec.value !== undefined) return undefined;
  if (old.kind !== spec.kind || oldSpec.kind !== spec.kind) return undefined;
  switch (spec.kind) {
    case 'ascii':
    case 'binary':
      return sizeOf(oldSpec) === sizeOf(spec) ? old : undefined;
    case 'private-key':
      return spec.migrate && oldSpec.migrate && (oldSpec.key_type ?? 'P-256') === (spec.key_type ?? 'P-256') ? old : undefined;
    default:
      return undefined;
  }
}
