import type { Secret, Session } from './schema.js';
import type { Finding } from './references.js';

const CERT_FIELDS = ['issuer', 'private_key', 'dns', 'san', 'endpoint', 'common_name', 'valid_for'] as const;

/** Which fields fit which kind of secret (§4.3): the part of the shape a plain schema cannot say. */
export function secretFieldRules(session: Session): Finding[] {
  return (session.secrets ?? []).flatMap((s, i) =>
    rulesFor(s).map(([field, message]) => ({ path: ['secrets', i, field], message })),
  );
}

function rulesFor(s: Secret): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (s.import) {
    for (const f of ['value', 'size', 'key_type', ...CERT_FIELDS] as const) {
      if (s[f] !== undefined) out.push([f, `an imported secret takes its ${f} from the exporting session`]);
    }
    return out;
  }
  if (!s.kind)
    return [['kind', 'a secret needs a kind (ascii, binary, private-key, x509, x509-ca) unless it is imported']];
  const isCert = s.kind === 'x509' || s.kind === 'x509-ca';
  if (s.size !== undefined && s.kind !== 'ascii' && s.kind !== 'binary')
    out.push(['size', `size is for ascii and binary secrets, not ${s.kind}`]);
  if (s.key_type !== undefined && s.kind !== 'private-key')
    out.push(['key_type', `key_type is for private-key secrets, not ${s.kind}`]);
  if (s.migrate !== undefined && s.kind !== 'private-key') out.push(['migrate', 'migrate is for private-key secrets']);
  if (!isCert)
    for (const f of CERT_FIELDS)
      if (s[f] !== undefined) out.push([f, `${f} is for x509 and x509-ca secrets, not ${s.kind}`]);
  if (s.kind === 'x509-ca' && s.endpoint !== undefined)
    out.push(['endpoint', 'endpoint is for end-entity (x509) certificates, not CAs']);
  if (s.endpoint === 'client' && s.dns !== undefined)
    out.push(['dns', 'a client certificate (endpoint: client) takes no dns names']);
  if (isCert && s.value === undefined && s.private_key === undefined)
    out.push(['private_key', `certificate '${s.name}' needs a private_key (a private-key secret)`]);
  return out;
}
