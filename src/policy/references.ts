import { findPlaceholders, isKnownSuffix, suffixFitsKind } from './placeholders.js';
import type { Secret, WrittenSession as Session } from './schema.js';
import type { Finding, PathSegment } from '../issues.js';
import { accessEntries } from './access-entries.js';

export type { Finding };

/** Stage 2: names that must refer to something, checked once the shape is right. All findings at once. */
export function crossReferences(session: Session): Finding[] {
  const secrets = new Map((session.secrets ?? []).map((s) => [s.name, s]));
  return [
    ...duplicates(session),
    ...(session.secrets ?? []).flatMap((s, i) => secretReferences(s, i, secrets)),
    ...issuerCycles(session.secrets ?? []),
    ...placeholderReferences(session, secrets),
    ...platformReferences(session, secrets),
    ...imageReferences(session),
    ...accessReferences(session, secrets),
  ];
}

const PERMISSIONS = ['read', 'update', 'create_sessions'] as const;

/** `$$SCONE::name$$` entries name a certificate of this session: its key is the identity the entry admits. */
function accessReferences(session: Session, secrets: Map<string, Secret>): Finding[] {
  const policy = session.access_policy;
  // A whole section from a config-fragment is checked once it is filled in (policy/fragments.ts).
  if (!policy || typeof policy === 'string') return [];
  return PERMISSIONS.flatMap((permission) =>
    accessEntries(policy[permission] ?? [], permission).flatMap((entry, i): Finding[] => {
      const base: PathSegment[] = ['access_policy', permission, i];
      if (entry.kind === 'secret') return secretEntryFinding(entry.name, base, secrets);
      if (entry.kind !== 'group') return [];
      return entry.members.flatMap((m, j) =>
        m.kind === 'secret' ? secretEntryFinding(m.name, [...base, entry.label, j], secrets) : [],
      );
    }),
  );
}

function secretEntryFinding(name: string, path: PathSegment[], secrets: Map<string, Secret>): Finding[] {
  const secret = secrets.get(name);
  if (!secret) return [{ path, message: `no secret named '${name}'` }];
  // A config-fragment entry is merged into the list when the session is filled in (policy/fragments.ts).
  if (secret.kind === 'x509' || secret.kind === 'x509-ca' || secret.kind === 'config-fragment') return [];
  const what = secret.kind === undefined ? 'has no kind' : `is a ${secret.kind}`;
  return [{ path, message: `'${name}' ${what}: an access entry names an x509 or x509-ca secret (its certificate)` }];
}

function duplicates(session: Session): Finding[] {
  const lists = [
    ['secrets', session.secrets],
    ['services', session.services],
    ['images', session.images],
  ] as const;
  return lists.flatMap(([key, list]) => {
    const seen = new Set<string>();
    return (list ?? []).flatMap((item, i) => {
      if (!seen.has(item.name)) {
        seen.add(item.name);
        return [];
      }
      return [{ path: [key, i, 'name'], message: `'${item.name}' is defined twice` }];
    });
  });
}

function secretReferences(s: Secret, i: number, secrets: Map<string, Secret>): Finding[] {
  const out: Finding[] = [];
  if (s.private_key !== undefined) {
    const key = secrets.get(s.private_key);
    if (!key) out.push({ path: ['secrets', i, 'private_key'], message: `no secret named '${s.private_key}'` });
    else if (key.kind !== undefined && key.kind !== 'private-key')
      out.push({
        path: ['secrets', i, 'private_key'],
        message: `'${s.private_key}' is a ${key.kind}, not a private-key`,
      });
  }
  if (s.issuer !== undefined) {
    const ca = secrets.get(s.issuer);
    if (!ca) out.push({ path: ['secrets', i, 'issuer'], message: `no secret named '${s.issuer}'` });
    else if (ca.kind !== undefined && ca.kind !== 'x509-ca')
      out.push({ path: ['secrets', i, 'issuer'], message: `'${s.issuer}' is a ${ca.kind}, not an x509-ca` });
  }
  return out;
}

/**
 * An issuer chain that comes back to where it started can never be issued. Every secret names at most one
 * issuer, so each name is walked once (on the current path, then done): linear, however long the chains.
 */
function issuerCycles(secrets: Secret[]): Finding[] {
  const issuerOf = new Map(secrets.map((s) => [s.name, s.issuer]));
  const done = new Set<string>();
  const cycleOf = new Map<string, { names: string[]; at: number }>();
  for (const start of issuerOf.keys()) {
    const path = new Map<string, number>();
    let next: string | undefined = start;
    while (next !== undefined && !done.has(next) && !path.has(next)) {
      path.set(next, path.size);
      next = issuerOf.get(next);
    }
    const names = [...path.keys()];
    if (next !== undefined && path.has(next)) {
      const cycle = names.slice(path.get(next));
      for (const [at, name] of cycle.entries()) cycleOf.set(name, { names: cycle, at });
    }
    for (const name of names) done.add(name);
  }
  return secrets.flatMap((s, i) => {
    const cycle = cycleOf.get(s.name);
    if (!cycle || s.issuer === undefined) return [];
    return [{ path: ['secrets', i, 'issuer'], message: `issuer cycle: ${describeCycle(cycle.names, cycle.at)}` }];
  });
}

/** The cycle from one of its members back to it; long ones shortened, so the findings stay linear in size. */
function describeCycle(names: string[], at: number): string {
  const from = (k: number) => names[(at + k) % names.length]!;
  if (names.length <= 8) return [...names.map((_, k) => from(k)), from(0)].join(' → ');
  const start = [from(0), from(1), from(2)].join(' → ');
  return `${start} → … (${names.length} certificates) → ${from(names.length - 1)} → ${from(0)}`;
}

function placeholderReferences(session: Session, secrets: Map<string, Secret>): Finding[] {
  return placeholderSites(session).flatMap(({ path, text }) =>
    findPlaceholders(text).flatMap((p): Finding[] => {
      const secret = secrets.get(p.secret);
      if (!secret) return [{ path, message: `no secret named '${p.secret}' (in ${p.raw})` }];
      if (!isKnownSuffix(p.suffix)) return [{ path, message: `unknown placeholder suffix '${p.suffix}' in ${p.raw}` }];
      if (secret.kind === 'config-fragment')
        return [{ path, message: `${p.raw} is a config-fragment: it fills attestation, security or access_policy` }];
      if (!suffixFitsKind(p.suffix, secret.kind))
        return [{ path, message: `'${p.suffix}' does not fit ${secret.kind} secret '${p.secret}' (in ${p.raw})` }];
      return [];
    }),
  );
}

/** Every field where the CAS fills in placeholders (§4.6). */
export function placeholderSites(session: Session): Array<{ path: PathSegment[]; text: string }> {
  const sites: Array<{ path: PathSegment[]; text: string }> = [];
  for (const [i, s] of (session.services ?? []).entries()) {
    const command = s.command;
    if (typeof command === 'string') sites.push({ path: ['services', i, 'command'], text: command });
    else {
      for (const [j, arg] of (command ?? []).entries()) sites.push({ path: ['services', i, 'command', j], text: arg });
    }
    for (const [k, v] of Object.entries(s.environment ?? {}))
      sites.push({ path: ['services', i, 'environment', k], text: v });
    if (s.fspf_key) sites.push({ path: ['services', i, 'fspf_key'], text: s.fspf_key });
  }
  for (const [i, img] of (session.images ?? []).entries()) {
    for (const [j, f] of (img.injection_files ?? []).entries()) {
      if (typeof f !== 'string' && f.content !== undefined)
        sites.push({ path: ['images', i, 'injection_files', j, 'content'], text: f.content });
    }
  }
  return sites;
}

/**
 * A platform entry may be a placeholder (§4.2): a config-fragment (filled in as a list), or an ascii or binary
 * secret whose value is the platform ID (rendered when a service attests). Any other kind could never match.
 */
function platformReferences(session: Session, secrets: Map<string, Secret>): Finding[] {
  return (session.services ?? []).flatMap((s, i) =>
    (s.platforms ?? []).flatMap((entry, j) =>
      findPlaceholders(entry).flatMap((p): Finding[] => {
        const path = ['services', i, 'platforms', j];
        const secret = secrets.get(p.secret);
        if (!secret) return [{ path, message: `no secret named '${p.secret}' (in ${p.raw})` }];
        if (secret.kind === 'config-fragment' && p.suffix === '') return [];
        // The session hash counts a platform secret's value (platforms/hash.ts): only one written here is known.
        if ((secret.kind === 'ascii' || secret.kind === 'binary') && (secret.import || secret.value === undefined))
          return [
            {
              path,
              message:
                `${p.raw}: a platform ID must be written in the session (an ascii or binary secret with a value, ` +
                'or a config-fragment), so that a session_hash pin fixes it — not generated or imported',
            },
          ];
        const fits = secret.kind === 'ascii' || secret.kind === 'binary';
        if (fits && suffixFitsKind(p.suffix, secret.kind)) return [];
        const what = secret.kind ?? 'imported';
        return [
          {
            path,
            message: `${p.raw} (${what}) cannot give a platform ID: use an ascii, binary or config-fragment secret`,
          },
        ];
      }),
    ),
  );
}

function imageReferences(session: Session): Finding[] {
  const images = new Set((session.images ?? []).map((i) => i.name));
  return (session.services ?? []).flatMap((s, i) =>
    s.image_name !== undefined && !images.has(s.image_name)
      ? [{ path: ['services', i, 'image_name'], message: `no image named '${s.image_name}'` }]
      : [],
  );
}
