import { z } from 'zod';
import { EVIDENCE_TYPES } from '../attestation/evidence.js';

/**
 * The CAS's audit log on the wire and on disk: one schema for what the CAS records, what `GET /v1/audit`
 * answers, what an export file holds and what `veil audit verify` reads. Events name secrets, never values.
 */

const name = z.string().min(1).max(1024);
const hash64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
/** Who acted: the SHA-256 (hex) of the client certificate's public key, as access policies name it. */
const actor = hash64.nullable();
/** Refusals of one client past its rate (README "Audit log"), not recorded, counted into its next entry. */
const suppressed = z.number().int().positive().optional();

export const auditEventSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.enum(['session.created', 'session.updated']),
    session: name,
    actor,
    old_hash: hash64.nullable(),
    new_hash: hash64,
  }),
  z.strictObject({ type: z.literal('session.read'), session: name, actor, hash: hash64 }),
  /** A write the CAS refused for a reason of policy (access, governance, signature, limits), with its code. */
  z.strictObject({
    type: z.literal('session.refused'),
    session: name,
    actor,
    code: z.string(),
    reason: z.string(),
    suppressed,
  }),
  z.strictObject({
    type: z.literal('attestation.released'),
    config_id: name,
    session: name,
    service: name,
    session_hash: hash64,
    evidence: z.enum(EVIDENCE_TYPES),
    simulated: z.boolean(),
    /** The measurement the evidence stated (hex: MRENCLAVE, MEASUREMENT, MRTD or the simulation digest). */
    measurement: z.string().max(256),
    platform: z.string().max(256).optional(),
    tcb_status: z.string().max(64).optional(),
    /** The secrets whose values went into the released configuration, by name. */
    secrets: z.array(name),
    /** Certificates renewed while rendering this release (names). */
    renewed: z.array(name).optional(),
  }),
  z.strictObject({
    type: z.literal('attestation.refused'),
    config_id: z.string().max(1024),
    session: name.optional(),
    evidence: z.enum(EVIDENCE_TYPES).optional(),
    /** The refusal's stable error code and the check that failed, in words. */
    code: z.string(),
    check: z.string().max(2048),
    suppressed,
  }),
  /** A secret sent to another CAS (POST /v1/exports); `session` is the exporting one. */
  z.strictObject({
    type: z.literal('export.released'),
    session: name,
    secret: name,
    /** The importing session as the request names it, and the SHA-256 of its CAS's CA certificate. */
    importer_session: name,
    importer_cas: hash64,
    /** Whether the certificate's private key went along. */
    private_key: z.boolean(),
    renewed: z.array(name).optional(),
  }),
  z.strictObject({
    type: z.literal('export.refused'),
    session: name,
    secret: name,
    importer_session: name,
    importer_cas: hash64,
    code: z.string(),
    reason: z.string().max(2048),
    suppressed,
  }),
  z.strictObject({ type: z.literal('value.read'), session: name, secret: name, actor }),
  z.strictObject({
    type: z.enum(['cas.started', 'cas.stopped']),
    /** A random ID per process, so the replicas of one store can be told apart. */
    replica: z.string().max(64),
    version: z.string().max(64),
    ca_fingerprint: hash64,
  }),
  z.strictObject({
    type: z.literal('key.created'),
    key: z.enum(['ca', 'audit', 'session-encryption', 'master']),
    fingerprint: hash64,
  }),
  z.strictObject({
    type: z.enum(['backup.made', 'backup.restored']),
    versions: z.number().int().nonnegative(),
    heads: z.number().int().nonnegative(),
    blobs: z.number().int().nonnegative(),
    /** SHA-256 of the backup file's header: ties the entry to the one file. */
    backup: hash64,
  }),
]);
export type AuditEvent = z.infer<typeof auditEventSchema>;
export type AuditEventType = AuditEvent['type'];

/**
 * One entry of the chain. `hash` = SHA-256 over a label and the canonical JSON of {v, seq, time, prev, key,
 * event}; `sig` is the audit key's signature of that hash (base64, ECDSA P-256, DER). `key` is the SHA-256 of
 * the audit certificate that signs, so a verifier picks the certificate (issued by the CAS's CA) by it.
 */
export const auditEntrySchema = z.strictObject({
  v: z.literal(1),
  seq: z.number().int().positive(),
  /** ISO 8601, UTC, milliseconds. */
  time: z.string().max(40),
  prev: hash64,
  key: hash64,
  event: auditEventSchema,
  hash: hash64,
  sig: z.string().max(512),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** The name and version of the export file (JSON lines: header, entries oldest first, trailer). */
export const AUDIT_EXPORT_FORMAT = 'veil-audit-export';
export const AUDIT_EXPORT_VERSION = 2;
/** One PEM certificate, bounded: a header with many or huge certificates is refused, not parsed. */
const pemCertificate = z
  .string()
  .max(16 * 1024)
  .startsWith('-----BEGIN CERTIFICATE-----');

/** The first line of an export: what it is, whose CAS it is, and the certificates of the keys that signed it. */
export const auditExportHeaderSchema = z.strictObject({
  format: z.literal(AUDIT_EXPORT_FORMAT),
  version: z.literal(AUDIT_EXPORT_VERSION),
  /** SHA-256 (hex) of the CAS CA certificate's DER, which issued every audit certificate below. */
  ca_fingerprint: hash64,
  /** The audit certificates (PEM); an entry's `key` is the SHA-256 of one of their DERs. */
  certificates: z.array(pemCertificate).min(1).max(64),
});
export type AuditExportHeader = z.infer<typeof auditExportHeaderSchema>;

export const auditHeadSchema = z.strictObject({ seq: z.number().int().nonnegative(), hash: hash64 });

/**
 * The last line: the chain's head when the export was made, signed by the audit key (signature over the hash of
 * the canonical JSON of every field but `sig`), so a file cut short — with or without this line — is detected,
 * and it vouches for exactly this file: the SHA-256 of its header line and a digest of the entries it holds.
 */
export const auditExportTrailerSchema = z.strictObject({
  end: z.literal(AUDIT_EXPORT_FORMAT),
  head: auditHeadSchema,
  /** When the export was made (ISO 8601, UTC). */
  time: z.string().max(40),
  key: hash64,
  /** SHA-256 (hex) of the header line's bytes (UTF-8, without its newline). */
  header: hash64,
  /** How many entries the file holds. */
  entries: z.number().int().nonnegative(),
  /** SHA-256 over "veil-audit-entries-v1\0" and the 32 bytes of each entry's `hash`, in file order. */
  digest: hash64,
  sig: z.string().max(512),
});
export type AuditExportTrailer = z.infer<typeof auditExportTrailerSchema>;
