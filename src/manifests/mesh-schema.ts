import { z } from 'zod';
import { unsupported } from '../policy/unsupported.js';

/**
 * SCONE's mesh manifest (`apiVersion: scone/5.8`, `kind: mesh`; reference §1.4 and
 * sconedocs-mesh-manifest-openapi.json), accepted unchanged: both the grouped `env` format
 * (`{service, env: [{name, value}]}`) and the older flat one (`{name, value}`).
 */
const text = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const keyValue = z.strictObject({ name: z.string().min(1), value: text });

const cas = z.strictObject({
  name: z.string().optional(),
  alias: z.array(z.string()).optional(),
  cas_url: z.string().min(1),
  cas_key: z.string().optional(),
  cas_software_key: z.string().optional(),
  cas_encryption_key: z.string().optional(),
  tolerance: z.string().optional(),
  mode: z.enum(['Upload', 'SignedManifest', 'EncryptedManifest', 'NoUpload', 'EncryptedOnly', 'SignOnline']).optional(),
});

/** SCONE's shared access/attestation/security policies, referred to by name: Veil writes them into each session. */
const SHARED_POLICIES =
  "Veil writes each service's access policy and attestation rules into its own session (policy.tolerate, ignore_advisories)";

const policy = z.strictObject({
  namespace: z.string().regex(/^[A-Za-z0-9_\-.~]{1,128}$/, 'must be 1–128 characters of A-Z a-z 0-9 _ - . ~'),
  tolerate: z.string().optional(),
  ignore_advisories: z.string().optional(),
  access_policy_name: unsupported('access_policy_name', SHARED_POLICIES).optional(),
  attestation_policy_name: unsupported('attestation_policy_name', SHARED_POLICIES).optional(),
  security_policy_name: unsupported('security_policy_name', SHARED_POLICIES).optional(),
  image_policy_namespace: unsupported(
    'image_policy_namespace',
    'Veil takes no policy templates from images',
  ).optional(),
  maa: unsupported(
    'maa (a Microsoft Azure Attestation URL)',
    'Veil does not use Microsoft Azure Attestation',
  ).optional(),
});

const service = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and -')
    .optional(),
  image: z.string().min(1),
  // SCONE takes these from a curated image; Veil builds every service from a service manifest, which says them.
  image_policy: unsupported(
    'image_policy (a policy template)',
    "Veil generates each service's session from its service manifest",
  ).optional(),
  image_secrets: unsupported(
    'image_secrets (a secrets template file)',
    "Veil takes a service's secrets from its service manifest: define them in its secrets.global " +
      '(they are exported to the policy namespace) and list those of other services in secrets.import',
  ).optional(),
  helm_chart: unsupported(
    'helm_chart (a chart template)',
    "Veil writes each service's chart into target/helm itself",
  ).optional(),
  env: unsupported(
    'env (a file of variables)',
    "give the service's variables in the mesh's env, under service: <name>",
  ).optional(),
});

export const meshManifestSchema = z.strictObject({
  apiVersion: z.string().regex(/^scone\/\d+\.\d+(\.\d+)?$/, "must be 'scone/<VERSION>', e.g. scone/5.8"),
  kind: z.literal('mesh'),
  cas: z.array(cas).min(1),
  policy,
  env: z.array(z.union([z.strictObject({ service: z.string().min(1), env: z.array(keyValue).optional() }), keyValue])),
  services: z.array(service).min(1),
  repo: unsupported(
    'repo (squashing, stripping and pushing images)',
    "SCONE calls it work in progress; Veil pushes each service's image to its build.to",
  ).optional(),
  helm_extra_values: unsupported(
    'helm_extra_values',
    'edit target/helm/values.yaml after veil apply, or pass --set to helm',
  ).optional(),
  extra_policies: unsupported(
    'extra_policies',
    'SCONE reserves it for a future extension; upload other sessions with veil session create',
  ).optional(),
});

export type MeshManifest = z.output<typeof meshManifestSchema>;
