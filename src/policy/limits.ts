import type { Finding } from './references.js';
import type { WrittenSession as Session } from './schema.js';

/**
 * What one session may hold, documented in the README ("Limits"). A session over any of them is refused right
 * after its shape is checked, before anything is generated, so that one upload cannot keep the CAS busy. RSA
 * keys are counted apart: each takes 0.2–0.8 s of a thread-pool thread to generate, an EC key 14 µs.
 */
export const SESSION_LIMITS = {
  /** The CAS's default request body limit (`veil cas serve --body-limit`), which every session passes first. */
  bodyBytes: 1024 * 1024,
  secrets: 256,
  /** private-key secrets with key_type RSA-2048 or RSA-3072. */
  rsaKeys: 8,
  /** pgp-key secrets: each is generated on the event loop (10–30 ms), one at a time. */
  pgpKeys: 16,
  services: 64,
  images: 64,
  /** Over all images of the session. */
  injectionFiles: 256,
  /** Imports from other CAS (`import: {cas_url, cas_key, …}`): each is one fetch when a service attests. */
  remoteImports: 16,
  /**
   * Sessions with YAML anchors or aliases are parsed by the `yaml` package, ≈ 30× slower than the plain path,
   * so only up to this size; larger sessions' errors are reported by field path, without line and column.
   */
  fullParseBytes: 64 * 1024,
  /**
   * Maps, lists, keys and scalars of the whole session, counted right after parsing, before its shape is
   * checked: validating, storing and serializing a session on each read all grow with them (30,000
   * environment entries took 217 ms to validate and ≈ 200 ms per read-back), far more than with its bytes.
   */
  yamlNodes: 20_000,
  /**
   * Entries of one access_policy list (read, update or create_sessions), group members counted: each certificate
   * or signer key is parsed at upload, and each signer may cost a signature verification.
   */
  accessEntries: 64,
} as const;

type Counted = Exclude<keyof typeof SESSION_LIMITS, 'bodyBytes' | 'fullParseBytes' | 'yamlNodes' | 'accessEntries'>;

const WHAT: Record<Counted, string> = {
  secrets: 'secrets',
  rsaKeys: 'RSA keys (private-key secrets with key_type RSA-2048 or RSA-3072)',
  pgpKeys: 'pgp-key secrets',
  services: 'services',
  images: 'images',
  injectionFiles: 'injection files (over all images)',
  remoteImports: 'imports from other CAS',
};

const PATH: Record<Counted, string> = {
  secrets: 'secrets',
  rsaKeys: 'secrets',
  pgpKeys: 'secrets',
  services: 'services',
  images: 'images',
  injectionFiles: 'images',
  remoteImports: 'secrets',
};

/**
 * The nodes of a parsed YAML value (maps, lists, map keys, scalars), counted up to `max + 1` at most: the walk
 * stops there, so it is linear in the text and bounded whatever shares a node (js-yaml's aliases).
 */
export function countYamlNodes(value: unknown, max: number = SESSION_LIMITS.yamlNodes): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= max) {
    const node = stack.pop();
    count++;
    if (node === null || typeof node !== 'object') continue;
    const children = Array.isArray(node) ? node : Object.values(node);
    if (!Array.isArray(node)) count += children.length;
    for (const child of children) stack.push(child);
  }
  return Math.min(count, max + 1);
}

/** A finding when the parsed session has more nodes than `yamlNodes` allows. */
export function nodeLimitFindings(value: unknown): Finding[] {
  const max = SESSION_LIMITS.yamlNodes;
  if (countYamlNodes(value, max) <= max) return [];
  const message = `more than ${max} YAML nodes (maps, lists, keys and scalars), the limit yamlNodes = ${max}`;
  return [{ path: [], message }];
}

/** One finding per limit the session exceeds; counting is linear in the session. */
export function limitFindings(session: Session): Finding[] {
  const counts: Record<Counted, number> = {
    secrets: session.secrets?.length ?? 0,
    rsaKeys: (session.secrets ?? []).filter((s) => s.kind === 'private-key' && s.key_type?.startsWith('RSA')).length,
    pgpKeys: (session.secrets ?? []).filter((s) => s.kind === 'pgp-key').length,
    services: session.services?.length ?? 0,
    images: session.images?.length ?? 0,
    injectionFiles: (session.images ?? []).reduce((n, image) => n + (image.injection_files?.length ?? 0), 0),
    remoteImports: (session.secrets ?? []).filter((s) => s.import?.cas_key !== undefined).length,
  };
  return (Object.keys(counts) as Counted[]).flatMap((limit) => {
    const max = SESSION_LIMITS[limit];
    if (counts[limit] <= max) return [];
    const message = `${counts[limit]} ${WHAT[limit]}, more than the limit ${limit} = ${max} allows`;
    return [{ path: [PATH[limit]], message, atKey: true }];
  });
}
