import { certificateSecret, type Dependencies } from './certificates.js';
import { SecretsError } from './errors.js';
import type { SecretSpec, StoredSecret, StoredSecretWithKey } from './types.js';
import { generatePgpKey, pgpKeyFromValue } from './pgp.js';
import { asciiSecret, binarySecret, fragmentSecret, generatedKeySecret, privateKeySecret, sizeOf } from './values.js';

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
const RANK: Record<string, number> = {
  ascii: 0,
  binary: 0,
  'config-fragment': 0,
  'private-key': 1,
  'pgp-key': 1,
  'x509-ca': 2,
  x509: 3,
};

/** The longest stretch generation runs before it lets the event loop serve other clients. */
export const YIELD_AFTER_MS = 4;

/**
 * Every secret a session defines, imports excepted, applying the update rules of session language §4.3
 * against the previous version: ascii, binary and pgp-key keep their values while kind and size stay, a private key
 * is kept only with `migrate: true` on both versions, certificates are always issued anew (so one whose key
 * or issuer changed is never left signed by the old one).
 *
 * Keys do not depend on anything, so all of them are started first, concurrently (RSA in libuv's pool); the
 * rest follows one by one in dependency order, giving the event loop a turn every few milliseconds.
 */
export async function generateSecretSet(
  specs: SecretSpec[],
  previous: PreviousSecrets | undefined,
  opts: GenerateOptions,
): Promise<Map<string, StoredSecret>> {
  const generation = new Generation(specs, previous, opts);
  const own = specs.filter((s) => !s.import);
  generation.startKeys(own);
  const order = own.sort((a, b) => (RANK[a.kind ?? ''] ?? 0) - (RANK[b.kind ?? ''] ?? 0));
  let since = performance.now();
  for (const spec of order) {
    await generation.get(spec.name);
    if (performance.now() - since >= YIELD_AFTER_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
  return generation.out;
}

class Generation implements Dependencies {
  readonly out = new Map<string, StoredSecret>();
  private readonly specs = new Map<string, SecretSpec>();
  private readonly started = new Set<string>();
  /** Keys being generated, by secret name. */
  private readonly keys = new Map<string, Promise<StoredSecret>>();
  private readonly previous: PreviousLookup;
  readonly now: Date;

  constructor(
    specs: SecretSpec[],
    previous: PreviousSecrets | undefined,
    private readonly opts: GenerateOptions,
  ) {
    for (const spec of specs) {
      if (this.specs.has(spec.name))
        throw new SecretsError('SECRET_DEPENDENCY', `secret '${spec.name}' is defined twice`, {
          hint: 'give every secret its own name',
        });
      this.specs.set(spec.name, spec);
    }
    this.previous = previousLookup(previous);
    this.now = opts.now;
  }

  /** Starts every key that must be generated anew; explicit values are read later, in order. */
  startKeys(own: SecretSpec[]): void {
    for (const spec of own) {
      if (spec.kind !== 'private-key' || spec.value !== undefined || kept(spec, this.previous)) continue;
      const key = generatedKeySecret(spec);
      // Awaited in order below; until then a failure must not count as unhandled (which ends the process).
      key.catch(() => undefined);
      this.keys.set(spec.name, key);
    }
  }

  async get(name: string): Promise<StoredSecretWithKey | undefined> {
    const spec = this.specs.get(name);
    if (!spec || spec.import) return this.opts.resolveImport?.(name);
    return this.out.get(name) ?? this.generate(spec);
  }

  isImport(name: string): boolean {
    return this.specs.get(name)?.import !== undefined;
  }

  private async generate(spec: SecretSpec): Promise<StoredSecret> {
    if (this.started.has(spec.name)) {
      throw new SecretsError(
        'SECRET_DEPENDENCY',
        `secret '${spec.name}' depends on itself (through issuer or private_key)`,
        { hint: 'break the cycle: a CA cannot be issued by a certificate it issues' },
      );
    }
    this.started.add(spec.name);
    const value = kept(spec, this.previous) ?? (await (this.keys.get(spec.name) ?? generateOne(spec, this)));
    this.out.set(spec.name, value);
    return value;
  }
}

async function generateOne(spec: SecretSpec, deps: Dependencies): Promise<StoredSecret> {
  switch (spec.kind) {
    case 'ascii':
      return asciiSecret(spec);
    case 'binary':
      return binarySecret(spec);
    case 'private-key':
      return privateKeySecret(spec);
    case 'pgp-key':
      return spec.value === undefined ? generatePgpKey(spec) : pgpKeyFromValue(spec);
    case 'config-fragment':
      return fragmentSecret(spec);
    case 'x509':
    case 'x509-ca':
      return certificateSecret(spec, spec.kind, deps);
    default:
      throw new SecretsError('SECRET_UNSUPPORTED', `secret '${spec.name}' has no kind the CAS can generate`, {
        hint: 'set kind: ascii, binary, private-key, x509, x509-ca, pgp-key or config-fragment',
      });
  }
}

interface PreviousLookup {
  specs: Map<string, SecretSpec>;
  values: Map<string, StoredSecret>;
}

function previousLookup(previous: PreviousSecrets | undefined): PreviousLookup {
  const specs = new Map<string, SecretSpec>();
  for (const spec of previous?.specs ?? []) if (!specs.has(spec.name)) specs.set(spec.name, spec);
  return { specs, values: previous?.values ?? new Map() };
}

/** The previous value, if the update rules keep it; explicit values are always taken anew from the policy. */
function kept(spec: SecretSpec, previous: PreviousLookup): StoredSecret | undefined {
  const old = previous.values.get(spec.name);
  const oldSpec = previous.specs.get(spec.name);
  if (!old || !oldSpec || oldSpec.import || spec.value !== undefined || oldSpec.value !== undefined) return undefined;
  if (old.kind !== spec.kind || oldSpec.kind !== spec.kind) return undefined;
  switch (spec.kind) {
    case 'ascii':
    case 'binary':
      return sizeOf(oldSpec) === sizeOf(spec) ? old : undefined;
    case 'pgp-key':
      return old;
    case 'private-key':
      return spec.migrate && oldSpec.migrate && (oldSpec.key_type ?? 'P-256') === (spec.key_type ?? 'P-256')
        ? old
        : undefined;
    default:
      return undefined;
  }
}
