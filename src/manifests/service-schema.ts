import { z } from 'zod';
import { UNSUPPORTED_KINDS } from '../policy/schema.js';
import { unsupported, unsupportedValues } from '../policy/unsupported.js';

/**
 * SCONE's service manifest (`apiVersion: scone/5.8`, `kind: genservice`; reference §1.3 and
 * sconedocs-service-manifest-openapi.json), accepted unchanged. Fields SCONE knows but Veil does not
 * implement are part of the shape, refused by name as "not supported by Veil" (`unsupported`), so that none
 * is ignored and none is reported as unknown.
 */
const text = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const strings = z.array(z.string());
export const API_VERSION = /^scone\/(\d+)\.(\d+)(\.\d+)?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const apiVersion = z
  .string()
  .regex(API_VERSION, "must be 'scone/<VERSION>', e.g. scone/5.8")
  .refine((v) => {
    const [, major, minor] = API_VERSION.exec(v)!;
    return Number(major) > 5 || (Number(major) === 5 && Number(minor) >= 8);
  }, 'the VERSION must be 5.8 or higher');

/** Variables and secrets become keys of plain objects, where `__proto__` would silently vanish. */
const NOT_PROTO = [
  (v: string) => v !== '__proto__',
  "'__proto__' is not accepted as a name (it would be lost)",
] as const;
const envName = z
  .string()
  .regex(ENV_NAME, 'must be letters, digits and _ (not starting with a digit)')
  .refine(...NOT_PROTO);
const localVariable = z.strictObject({ name: envName, value: text });
const globalVariable = z.strictObject({ name: envName, value: text.optional() });

const AAD = 'an Azure AD token needs Azure';

export const manifestSecret = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_\-.~]{1,128}$/, 'must be 1–128 characters of A-Z a-z 0-9 _ - . ~')
    .refine(...NOT_PROTO),
  kind: z
    .union([
      z.enum(['ascii', 'binary', 'private-key', 'x509', 'x509-ca']),
      unsupportedValues('kind', UNSUPPORTED_KINDS),
    ])
    .optional(),
  size: z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]).optional(),
  value: text.optional(),
  export_public: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
  private_key: z.string().optional(),
  issuer: z.string().optional(),
  common_name: z.string().optional(),
  dns: strings.optional(),
  endpoint: z.enum(['server', 'client']).optional(),
  key_type: z.enum(['P-256', 'P-384', 'Ed25519', 'RSA-2048', 'RSA-3072']).optional(),
  migrate: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
  valid_for: z.string().optional(),
  tenant_id: unsupported('tenant_id (of an aad-token secret)', AAD).optional(),
  client_id: unsupported('client_id (of an aad-token secret)', AAD).optional(),
  application_secret: unsupported('application_secret (of an aad-token secret)', AAD).optional(),
});

const BINARY_FS = "binary-fs (SCONE's files linked into the enclave) has no counterpart in Veil";

const build = z.strictObject({
  name: z.string().regex(SERVICE_NAME, 'must be a DNS label: lower-case letters, digits and -'),
  kind: z.string(),
  to: z.string().min(1),
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  from: z.string().optional(),
  pwd: z.string().startsWith('/', 'must be an absolute path').optional(),
  copy: strings.optional(),
  requirements: z.string().optional(),
  run: strings.optional(),
  binaries: unsupported('binaries', 'sconifying binaries of an image is `veil sconify --binary`').optional(),
  dirs: unsupported('dirs', 'encrypting directories of an image is `veil sconify --dir`').optional(),
  fs_dirs: unsupported('fs_dirs', BINARY_FS).optional(),
  fs_files: unsupported('fs_files', BINARY_FS).optional(),
  plains: strings.optional(),
  plain_files: strings.optional(),
  host_paths: strings.optional(),
  volumes: unsupported('volumes', 'volumes are not implemented; the service sees its image and tmpfs').optional(),
  signature: z.strictObject({ sign: z.boolean().optional(), key: z.string().optional() }).optional(),
  stable: z.string().optional(),
  gen_policy: unsupported('gen_policy', 'policy templates are not used: Veil generates the session').optional(),
});

export const serviceManifestSchema = z.strictObject({
  apiVersion,
  kind: z.literal(
    'genservice',
    "must be 'genservice' for a service manifest ('mesh' manifests are applied the same way)",
  ),
  environment: z.strictObject({ local: z.array(localVariable).optional(), global: z.array(globalVariable).optional() }),
  injection_files: z
    .array(z.strictObject({ path: z.string().startsWith('/', 'must be an absolute path'), content: z.string() }))
    .optional(),
  secrets: z.strictObject({ global: z.array(manifestSecret).optional(), import: strings.optional() }).optional(),
  build,
  requirements: z.string().optional(),
});

export type ServiceManifest = z.output<typeof serviceManifestSchema>;
export type ManifestSecret = z.output<typeof manifestSecret>;

/** Build kinds Veil runs: Python programs, and an existing native program (e.g. Debian's redis-server). */
export const BUILD_KINDS = ['python', 'native'] as const;

/**
 * `build.signature` signs the enclave (SGX's MRSIGNER) with the key given (target/identity.pem by default). Veil
 * identifies a program by its measurement, which the session pins; nothing would check a signature, so one
 * asked for is refused rather than made and ignored. `sign: false` asks for nothing and is accepted.
 */
export const SIGNATURE_WHY =
  'Veil signs no enclave: the session pins the measurement of the program instead (remove it, or write sign: false)';
