import type { Secret, WrittenSession as Session } from './schema.js';
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
  if (!s.kind) {
    const kinds = 'ascii, binary, private-key, x509, x509-ca, pgp-key, config-fragment';
    return [['kind', `a secret needs a kind (${kinds}) unless it is imported`]];
  }
  out.push(...fragmentRules(s));
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

/** A structured value is a fragment's; a fragment fills sections, so it is never published or sized. */
function fragmentRules(s: Secret): Array<[string, string]> {
  const structured = s.value !== undefined && typeof s.value === 'object';
  if (s.kind !== 'config-fragment') {
    return structured
      ? [['value', `a structured value (a map or a list) is for config-fragment secrets, not ${s.kind}`]]
      : [];
  }
  const out: Array<[string, string]> = [];
  if (s.value === undefined) out.push(['value', `config-fragment '${s.name}' needs a value (or an import)`]);
  if (s.export_public) out.push(['export_public', 'a config-fragment fills sections of sessions and is not published']);
  return out;
}
