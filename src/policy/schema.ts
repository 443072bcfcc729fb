import { posix } from 'node:path';
import { z } from 'zod';
import { KEY_TYPES, type KeyType } from '../key-types.js';
import { AT_LEAST_KEY, countEntries, parseEntry, type Permission } from './access-entries.js';
import { attestationVariant } from './attestation-schema.js';
import { commandProblem } from './command.js';
import { hex, hex64 } from './hex.js';
import { exportSessionObject, exportString, importRef } from './remote.js';
import { SESSION_LIMITS } from './limits.js';
import { onlyValue, unsupported, unsupportedValues } from './unsupported.js';

/** Session language v0.3 (reference §4): the one schema behind validation, types and the published JSON Schema. */
const COMPONENT = /^[A-Za-z0-9_\-.~]{1,128}$/;
const PLACEHOLDER = /^\$\$SCONE::[^$]+\$\$$/;

const text = z.union([z.string(), z.number(), z.boolean()]).transform(String);
/** Names become keys of maps (secrets by name, environments); `__proto__` would vanish from a plain object. */
const notProto = (v: string) => v !== '__proto__';
const name = z
  .string()
  .regex(COMPONENT, 'must be 1–128 characters of A-Z a-z 0-9 _ - . ~')
  .refine(notProto, "'__proto__' is not accepted as a name");

/**
 * What a read-back shows in place of a secret-bearing field, and what an update may send to keep the stored
 * value (a read-modify-write cycle keeps explicit values). Reserved: no secret may have this literal value.
 */
export const REDACTED = '<redacted>';

/** The one list of secret-bearing fields: every schema registered here (found by walking the session schema). */
export const secretFields = z.registry<{ secret: true }>();

/** A secret-bearing field: redacted in read-backs, left out of the hash, kept on update when sent as REDACTED. */
function secretField<T extends z.ZodType>(schema: T) {
  const field = z.union([schema, z.literal(REDACTED)]);
  secretFields.add(field as z.ZodType, { secret: true });
  return field;
}
/** A command string splits into words without a shell (the runtime starts the program directly). */
const commandString = z.string().superRefine((value, ctx) => {
  const problem = commandProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
export const sessionName = z
  .string()
  .regex(
    /^[A-Za-z0-9_\-.~]{1,128}(\/[A-Za-z0-9_\-.~]{1,128})*$/,
    'each /-separated part must be 1–128 characters of A-Z a-z 0-9 _ - . ~',
  );

/** SCONE's entry forms (checked in full by accessListFor, which parses them as the CAS will use them). */
const signerShape = z.strictObject({ signer: z.string() });
const memberList = z.array(
  z.union([z.string(), signerShape], {
    error:
      'a nested group is not supported by Veil (groups do not nest): a group member is a plain entry ' +
      '(certificate, key hash, CREATOR, $$SCONE::secret$$ or {signer: <PEM>})',
  }),
);
const entryShape = z.union([
  z.string(),
  signerShape,
  z.strictObject({ 'require-all': memberList }),
  z.record(z.string().regex(AT_LEAST_KEY, 'must be require-all or require-at-least-N (N ≥ 1)'), memberList),
]);

/** One permission's list: shapes first, then each entry parsed as the CAS will read it (bounded by a limit). */
function accessListFor(permission: Permission) {
  const list = z.array(entryShape).superRefine((entries, ctx) => {
    for (const special of ['ANY', 'NONE']) {
      if (entries.includes(special) && entries.length > 1)
        ctx.addIssue({ code: 'custom', message: `${special} must be alone in its list` });
    }
    const max = SESSION_LIMITS.accessEntries;
    if (countEntries(entries) > max) {
      const message = `more than ${max} entries (group members counted), the limit accessEntries = ${max}`;
      ctx.addIssue({ code: 'custom', message });
      return;
    }
    for (const [i, raw] of entries.entries()) {
      const parsed = parseEntry(raw, permission);
      if ('problems' in parsed) {
        for (const p of parsed.problems) ctx.addIssue({ code: 'custom', path: [i, ...p.path], message: p.message });
      }
    }
  });
  /** SCONE accepts `read: ANY` as well as `read: [ANY]` (and so for NONE): one form after parsing, the list. */
  // The scalar is a string first, so that a list never reads as a wrong scalar when its entries are wrong.
  const scalar = z
    .string()
    .pipe(z.enum(['ANY', 'NONE']))
    .transform((v) => [v])
    .meta({ enum: ['ANY', 'NONE'] });
  return z.union([scalar, list]);
}

const accessPolicy = z.strictObject({
  read: accessListFor('read').optional(),
  update: accessListFor('update').optional(),
  create_sessions: accessListFor('create_sessions').optional(),
});

/** A service lists at most this many platforms (host IDs). */
export const MAX_PLATFORMS = 256;

/**
 * SCONE's platform IDs (64 hex digits; in SCONE, SGX platforms). Veil checks them for simulation evidence only:
 * the hex SHA-256 of a host key's SPKI (`veil host id`). A placeholder is accepted as SCONE accepts it, and
 * matches no host.
 */
const platformId = z.union([
  hex64,
  z.string().regex(PLACEHOLDER, 'must be 64 hex digits or a $$SCONE::secret$$ placeholder'),
]);
const platforms = z.array(platformId).max(MAX_PLATFORMS);

const FSPF_KEY_FORM = 'must be 64 hex digits or a $$SCONE::secret$$ placeholder';

/**
 * SCONE's fields for what Veil does not do. Each is refused by name, or accepted only with the value that means
 * what Veil does anyway, so that nothing is accepted and then ignored (a second factor nobody checks, say).
 */
const OTP =
  "SCONE's second factor (a one-time password in the service ID, <service>@<OTP>) is not implemented: " +
  'Veil releases a configuration on attestation evidence alone; remove the field';
const ACCESS_TOKEN =
  "SCONE's service access token (SCONE_SERVICE_ACCESS_TOKEN, a second factor beside attestation) is not " +
  'implemented: Veil releases a configuration on attestation evidence alone; remove the field';
const VOLUMES =
  'encrypted volumes (an fspf per volume that the CAS initialises, tracks and exports) are not implemented: ' +
  "a service's files are its shielded tree (fspf_path), and what it writes stays on tmpfs; remove the field";
/** Veil unshields only the tree whose tag the session pins, and the program's writes never update it. */
const fspfUpdatePolicy = z.union([
  z.literal('rollback_protected_reinitializable'),
  unsupportedValues('fspf_update_policy', {
    no_rollback_protection:
      'Veil unshields only the tree whose tag the session pins (fspf_tag), so an older tree is always refused; ' +
      'remove the field or write rollback_protected_reinitializable (the default)',
  }),
]);
/** SCONE's CAS writes `persistency: None` into every service it reads back; Veil keeps no service state. */
const persistency = onlyValue(
  'persistency other than None',
  z.literal('None'),
  'Veil keeps no state of a service across runs (what it writes stays on tmpfs); ' +
    "None, which SCONE's CAS writes in read-backs, is accepted",
);

const service = z.strictObject({
  name,
  command: z.union([commandString, z.array(z.string())]).optional(),
  environment: z.record(z.string(), text).optional(),
  pwd: z.string().optional(),
  image_name: z.string().optional(),
  mrenclaves: z.array(hex64).optional(),
  attestation: z.union([attestationVariant, z.array(attestationVariant)]).optional(),
  platforms: platforms.optional(),
  fspf_path: z.string().optional(),
  fspf_key: secretField(z.union([hex64, z.string().regex(PLACEHOLDER, FSPF_KEY_FORM)])).optional(),
  fspf_tag: hex(32).optional(),
  fspf_update_policy: fspfUpdatePolicy.optional(),
  one_time_password_shared_secret: unsupported('one_time_password_shared_secret', OTP).optional(),
  persistency: persistency.optional(),
  /**
   * Veil only (SCONE has no such field; SCONE files stay valid without it): how `veil run` hands a long-running
   * program renewed certificates — rewrite its injected files in place (the default) or restart it.
   */
  renewal: z.enum(['rewrite', 'restart']).optional(),
});

/** Where a secret lands must be said plainly: no '..', '.', '//' or trailing '/' to reinterpret it. */
const plainPath = z
  .string()
  .startsWith('/', 'must be an absolute path')
  .refine(
    (p) => posix.normalize(p) === p && (p === '/' || !p.endsWith('/')),
    "must be a plain absolute path (no '..', '.', '//' or trailing '/')",
  );

const injectionFile = z.union([
  plainPath,
  z.strictObject({
    path: plainPath,
    content: z.string().optional(),
    permission: z
      .union([
        z.number().int().min(0).max(0o7777),
        z.string().regex(/^(0o?)?[0-7]{3,4}$/, 'must be an octal mode such as 0600'),
      ])
      .optional(),
  }),
]);

/**
 * Image names are arbitrary strings in SCONE (sconedocs names one `registry.scontain.com/…/dapps:copy_demo`):
 * only a name within the session, unique there (cross-references), never a path.
 */
const imageName = z
  .string()
  .min(1, 'must not be empty')
  .max(512, 'must be at most 512 characters')
  .refine(notProto, "'__proto__' is not accepted as a name");

const image = z.strictObject({
  name: imageName,
  injection_files: z.array(injectionFile).optional(),
  volumes: unsupported('images[].volumes', VOLUMES).optional(),
});

const exportTarget = z.union([exportSessionObject, z.strictObject({ namespace: z.string() }), exportString]);

export const SECRET_KINDS = [
  'ascii',
  'binary',
  'private-key',
  'x509',
  'x509-ca',
  'pgp-key',
  'config-fragment',
] as const;

/** SCONE's secret kinds Veil does not support, refused by name rather than as unknown values. */
export const UNSUPPORTED_KINDS: Record<string, string> = {
  'aad-token': 'an Azure AD token needs Azure',
};

/** A config-fragment's value is any YAML (a map, a list, a scalar); what it fills is checked once filled. */
const fragmentValue = z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]);
export { KEY_TYPES };

const secret = z.strictObject({
  name,
  kind: z.union([z.enum(SECRET_KINDS), unsupportedValues('kind', UNSUPPORTED_KINDS)]).optional(),
  size: z.number().int().min(1).max(65536).optional(),
  value: secretField(z.union([text, fragmentValue])).optional(),
  key_type: z.enum(KEY_TYPES).optional(),
  private_key: z.string().optional(),
  issuer: z.string().optional(),
  common_name: z.string().optional(),
  dns: z.array(z.string()).optional(),
  san: z
    .array(z.string().regex(/^(dns:[^\s]+|ip:[0-9a-fA-F.:]+)$/, "must be 'dns:<name>' or 'ip:<address>'"))
    .optional(),
  endpoint: z.enum(['server', 'client']).optional(),
  valid_for: z.string().optional(),
  export: z
    .union([exportTarget, z.array(exportTarget)])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .optional(),
  export_public: z.boolean().optional(),
  import: importRef.optional(),
  migrate: z.boolean().optional(),
  import_akv: unsupported('import_akv', 'a secret from Azure Key Vault needs Azure').optional(),
});

export const TOLERATIONS = [
  'debug-mode',
  'hyperthreading',
  'insecure-igpu',
  'software-hardening-needed',
  'aepic-leak',
  'insecure-configuration',
  'outdated-tcb',
  'maa-managed-tcb',
] as const;

const MAA = 'it configures Microsoft Azure Attestation (mode: maa), which Veil does not use';

const securityAttestation = z.strictObject({
  mode: z.enum(['hardware', 'maa', 'none']).optional(),
  tolerate: z.array(z.enum(TOLERATIONS)).optional(),
  ignore_advisories: z.union([z.literal('*'), z.array(z.string())]).optional(),
  trusted_scone_qe_pubkeys: unsupported(
    'trusted_scone_qe_pubkeys',
    "SCONE's own quoting enclave is not used: Veil verifies Intel's, AMD's and Azure's evidence against their roots",
  ).optional(),
  url: unsupported('attestation.url', MAA).optional(),
  certificates: unsupported('attestation.certificates', MAA).optional(),
  one_time_password_shared_secret: unsupported('attestation.one_time_password_shared_secret', OTP).optional(),
});

const security = z.strictObject({
  attestation: securityAttestation.optional(),
  singleton_enclaves: onlyValue(
    'singleton_enclaves: true',
    z.literal(false),
    'Veil does not limit a service to one running instance: each process that attests gets its configuration ' +
      '(false, the default, is accepted)',
  ).optional(),
  service_access_token: unsupported('service_access_token', ACCESS_TOKEN).optional(),
});

/**
 * `store_in: !cas` (SCONE's default) is what Veil does: secrets are kept in the CAS. The YAML parser keeps no
 * tags, so `!cas` reads as an empty value, and `!akv {token, vault}` as a map, which is refused.
 */
const secretConfig = onlyValue(
  'secret_config other than store_in: !cas',
  z.strictObject({ store_in: z.union([z.literal(''), z.null()]) }),
  'Veil keeps every secret in the CAS (store_in: !cas, the default) and none in Azure Key Vault (store_in: !akv)',
);

export const sessionSchema = z.strictObject({
  name: sessionName,
  version: text.optional(),
  predecessor: z.union([hex64, z.null()]).optional(),
  access_policy: accessPolicy.optional(),
  services: z.array(service).optional(),
  images: z.array(image).optional(),
  secrets: z.array(secret).optional(),
  security: security.optional(),
  volumes: unsupported('volumes', VOLUMES).optional(),
  secret_config: secretConfig.optional(),
  /** Added by the CAS on read-back; accepted so a read-back can be uploaded again, and ignored by the hash. */
  creator: z.string().optional(),
});

/**
 * `$$SCONE::name$$` standing for a config-fragment (reference §4.3: "used in attestation, security,
 * access_policy; lists are merged"): a whole section, or an entry of one of the section's lists.
 */
export const FRAGMENT_REF = /^\$\$SCONE::([A-Za-z0-9_\-.~]{1,128})\$\$$/;
const ref = z.string().regex(FRAGMENT_REF, 'must be a $$SCONE::name$$ placeholder of a config-fragment');

/**
 * The session as written: the schema above, where SCONE lets a config-fragment stand for a section or a list
 * entry. `fillFragments` (fragments.ts) fills them in, and the result must pass `sessionSchema` itself, so a
 * fragment can bring nothing a written-out section could not.
 */
export const writtenSessionSchema = sessionSchema.extend({
  access_policy: z.union([accessPolicy, ref]).optional(),
  services: z
    .array(
      service.extend({
        attestation: z.union([attestationVariant, ref, z.array(z.union([attestationVariant, ref]))]).optional(),
      }),
    )
    .optional(),
  security: z
    .union([
      security.extend({
        attestation: z
          .union([
            securityAttestation.extend({ tolerate: z.array(z.union([z.enum(TOLERATIONS), ref])).optional() }),
            ref,
          ])
          .optional(),
      }),
      ref,
    ])
    .optional(),
});

/** As written (fragments not filled in): what is stored, hashed and read back. */
export type WrittenSession = z.output<typeof writtenSessionSchema>;
/** With its config-fragments filled in: what access control and attestation judge by. */
export type Session = z.output<typeof sessionSchema>;
export type Service = NonNullable<Session['services']>[number];
export type Image = NonNullable<Session['images']>[number];
export type InjectionFile = NonNullable<Image['injection_files']>[number];
export type Secret = NonNullable<Session['secrets']>[number];
export type SecretKind = (typeof SECRET_KINDS)[number];
export type { KeyType };
export type AccessPolicy = NonNullable<Session['access_policy']>;
export type ExportTarget = NonNullable<Secret['export']>[number];
export type Security = NonNullable<Session['security']>;
export type AttestationVariant = z.output<typeof attestationVariant>;
