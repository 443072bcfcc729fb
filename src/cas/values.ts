import { X509Certificate } from 'node:crypto';
import type { Secret } from '../policy/index.js';
import type { StoredSecret } from '../secrets/index.js';
import { pemEncode } from '../secrets/index.js';
import { CasError } from './errors.js';
import { sessionOf } from './parsed.js';
import { isRenewable, renewPublic } from './renewal.js';
import { renewalPoint } from './renewed.js';
import type { CasContext } from './sessions.js';
import { recordOrFail } from './audit-events.js';

/** The public view of one secret, in the shape SCONE's /v1/values answers with. */
export interface PublicValue {
  kind: string;
  value: string;
  expires: string | null;
  renew: string | null;
}

/**
 * GET /v1/values/session=<name>[,secret=<s>]: only `export_public` secrets, to anyone. Each value read is an
 * audit entry (`actor` null without a client certificate), recorded before the answer.
 */
export async function publicValues(
  ctx: CasContext,
  name: string,
  actor: string | null = null,
): Promise<{ values: Record<string, PublicValue> }> {
  const { record, specs } = await publicSecretsOf(ctx, name);
  const values: Record<string, PublicValue> = {};
  for (const spec of specs) {
    const stored = record.secrets[spec.name] as StoredSecret | undefined;
    if (stored) values[spec.name] = toPublic(stored, spec);
  }
  for (const secret of Object.keys(values)) await recordRead(ctx, name, secret, actor);
  return { values };
}

export async function publicValue(
  ctx: CasContext,
  name: string,
  secret: string,
  actor: string | null = null,
): Promise<PublicValue> {
  const { record, specs } = await publicSecretsOf(ctx, name, secret);
  const spec = specs.find((s) => s.name === secret);
  const stored = record.secrets[secret] as StoredSecret | undefined;
  if (!spec || !stored) throw notPublic(name, secret);
  const value = toPublic(stored, spec);
  await recordRead(ctx, name, secret, actor);
  return value;
}

function recordRead(ctx: CasContext, session: string, secret: string, actor: string | null): Promise<void> {
  return recordOrFail(ctx.audit, { type: 'value.read', session, secret, actor });
}

/** The session's public secrets, certificates past two thirds of their lifetime renewed (time, not traffic). */
async function publicSecretsOf(ctx: CasContext, name: string, only?: string) {
  const current = await ctx.store.current(name);
  // A missing session and a private one answer alike, so the endpoint does not reveal which sessions exist.
  if (!current) throw notPublic(name);
  const specs = (sessionOf(current).secrets ?? []).filter((s) => s.export_public && !s.import);
  const asked = specs.filter((s) => only === undefined || s.name === only).map((s) => s.name);
  return { record: await renewPublic(ctx, current, asked), specs };
}

function notPublic(session: string, secret?: string): CasError {
  const what = secret ? `secret '${secret}' of session '${session}'` : `session '${session}'`;
  return new CasError('CAS_NOT_PUBLIC', `${what} does not exist or is not visible for a public client`, {
    hint: "only secrets marked 'export_public: true' can be read without authentication",
  });
}

function toPublic(stored: StoredSecret, spec: Secret): PublicValue {
  switch (stored.kind) {
    case 'ascii':
      return { kind: 'string', value: stored.value, expires: null, renew: null };
    case 'binary':
      return { kind: 'binary', value: stored.value, expires: null, renew: null };
    case 'x509':
    case 'x509-ca':
      return certificateValue(stored.kind, Buffer.from(stored.value, 'base64'), isRenewable(spec));
    case 'pgp-key':
      // The public half only, ASCII-armored: what `export_public` means for a key pair.
      return { kind: 'pgp-key', value: stored.publicKey, expires: null, renew: null };
    default:
      throw new CasError('CAS_INTERNAL', `a ${stored.kind} secret cannot be public`);
  }
}

/**
 * Uploads refuse certificates whose dates do not parse, but versions stored before that rule may hold one:
 * such a certificate is shown without an expiry rather than failing the whole answer. `renew` is when the CAS
 * renews it (two thirds of its lifetime), for certificates it generated; null for explicit ones.
 */
export function certificateValue(kind: string, der: Buffer, renewable = false): PublicValue {
  const notAfter = new Date(new X509Certificate(der).validTo);
  const expires = Number.isNaN(notAfter.getTime()) ? null : notAfter.toISOString();
  const point = renewable && expires !== null ? renewalPoint(der) : undefined;
  const renew = point === undefined ? null : new Date(point).toISOString();
  return { kind, value: pemEncode('CERTIFICATE', der), expires, renew };
}
