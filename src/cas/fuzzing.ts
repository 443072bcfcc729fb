/**
 * Test-only: request generators for the CAS fuzz test (`fuzz.test.ts`). Random and grammar-aware: each request
 * starts from a route of the API and is mutated in its method, path encoding, query, headers and body.
 */

export type Rng = () => number;

export interface FuzzSeeds {
  /** Session YAML texts the mutations start from. */
  policies: string[];
  /** Session names that exist in the CAS under test. */
  sessions: string[];
  /** A valid attestation request (fresh nonce, bound evidence), to confuse field by field. */
  attest: () => Promise<Record<string, unknown>>;
}

export interface FuzzRequest {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Send the body chunked, possibly with broken chunk framing. */
  chunked?: 'ok' | 'broken';
  /** Which client certificate: the owner's, a stranger's, or none. */
  who: 'owner' | 'stranger' | 'none';
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, max: number) => Math.floor(rng() * max);
const chance = (rng: Rng, p: number) => rng() < p;

const METHODS = [
  'GET',
  'GET',
  'POST',
  'POST',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'X-VEIL',
  'get',
];
const ROUTES = [
  '/v1/version',
  '/v1/attestation',
  '/v1/sessions',
  '/v1/sessions/',
  '/session',
  '/v1/attest/nonce',
  '/v1/attest',
  '/v1/values/',
];
const ODD = [
  '%',
  '%25',
  '%2',
  '%zz',
  '%00',
  '%E0%A4%A',
  '%C0%AF',
  '%2F',
  '%2C',
  '..',
  '//',
  '\u00e9',
  '\u202e',
  '~',
  ',',
  '=',
  ';',
  '*',
  '?',
  '#',
  ' ',
];
const QUERY_KEYS = ['hash', 'nonce', 'hash[]', 'nonce[0]', '__proto__', 'constructor', 'x', ''];

/** One request against some route of the API, mutated. */
export async function fuzzRequest(rng: Rng, seeds: FuzzSeeds): Promise<FuzzRequest> {
  const route = pick(rng, ROUTES);
  const path = route + routeSuffix(rng, route, seeds);
  const method = (route.includes('attest') && route !== '/v1/attestation') || route.endsWith('sion') ? 'POST' : 'GET';
  // A quarter of the requests are well-formed, so that the handlers behind the validators are reached too.
  if (chance(rng, 0.25)) {
    const target = path + (route === '/v1/attestation' ? `?nonce=${'0'.repeat(64)}` : '');
    return { method, target, headers: [], body: await body(rng, route, seeds, false), who: 'owner' };
  }
  const request: FuzzRequest = {
    method: chance(rng, 0.85) ? method : pick(rng, METHODS),
    target: mutatePath(rng, path) + query(rng),
    headers: headers(rng),
    body: Buffer.alloc(0),
    who: pick(rng, ['owner', 'owner', 'owner', 'stranger', 'none'] as const),
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') request.body = await body(rng, route, seeds, true);
  if (chance(rng, 0.05)) request.chunked = chance(rng, 0.5) ? 'ok' : 'broken';
  return request;
}

function routeSuffix(rng: Rng, route: string, seeds: FuzzSeeds): string {
  if (route === '/v1/sessions/') return chance(rng, 0.7) ? pick(rng, seeds.sessions) : randomText(rng, 40);
  if (route === '/v1/values/') {
    const session = chance(rng, 0.7) ? pick(rng, seeds.sessions) : randomText(rng, 20);
    return chance(rng, 0.5) ? `session=${session}` : `session=${session},secret=${randomText(rng, 10)}`;
  }
  return chance(rng, 0.1) ? `/${randomText(rng, 10)}` : '';
}

function mutatePath(rng: Rng, path: string): string {
  let out = path;
  for (let n = int(rng, 3); n > 0; n--) {
    const at = int(rng, out.length + 1);
    out = out.slice(0, at) + pick(rng, ODD) + out.slice(at);
  }
  if (chance(rng, 0.05)) out += 'x'.repeat(int(rng, 9000));
  if (chance(rng, 0.1)) out = encodeAll(rng, out);
  return out.replace(/[ #?]/g, (c) => (chance(rng, 0.5) ? encodeURIComponent(c) : c === ' ' ? '%20' : c));
}

function encodeAll(rng: Rng, text: string): string {
  const hex = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return [...text].map((c) => (c !== '/' && chance(rng, 0.3) ? hex(c) : c)).join('');
}

function query(rng: Rng): string {
  if (chance(rng, 0.5)) return '';
  const parts: string[] = [];
  for (let n = 1 + int(rng, 4); n > 0; n--) {
    const values = ['', '0'.repeat(64), 'a'.repeat(64), randomText(rng, 8), '%zz', '%00', 'x'.repeat(int(rng, 5000))];
    const value = pick(rng, values);
    // A key given twice arrives as an array.
    const key = parts.length > 0 && chance(rng, 0.3) ? parts[parts.length - 1]!.split('=')[0]! : pick(rng, QUERY_KEYS);
    parts.push(`${key}=${value}`);
  }
  return `?${parts.join(pick(rng, ['&', '&', ';', '&&']))}`;
}

const CONTENT_TYPES = [
  'application/json',
  'application/yaml',
  'text/plain; charset=latin1',
  ';;;',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  '\u00ff',
];

function headers(rng: Rng): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (chance(rng, 0.3)) out.push(['Content-Type', pick(rng, CONTENT_TYPES)]);
  if (chance(rng, 0.1)) out.push(['Content-Type', 'application/json']);
  if (chance(rng, 0.05)) out.push(['X-Big', 'a'.repeat(int(rng, 24_000))]);
  if (chance(rng, 0.05)) for (let i = 0; i < 200; i++) out.push([`X-H${i}`, randomText(rng, 20)]);
  if (chance(rng, 0.05)) out.push(['Accept', pick(rng, ['*/*', 'application/xml', ''])]);
  if (chance(rng, 0.03)) out.push(['Expect', '100-continue']);
  if (chance(rng, 0.03)) out.push([randomText(rng, 6), randomText(rng, 30)]);
  return out;
}

async function body(rng: Rng, route: string, seeds: FuzzSeeds, mutate: boolean): Promise<Buffer> {
  if (!mutate) {
    if (route === '/v1/attest') return Buffer.from(JSON.stringify(await seeds.attest()));
    const upload = route.endsWith('sion') || route === '/v1/sessions';
    return upload ? Buffer.from(pick(rng, seeds.policies)) : Buffer.alloc(0);
  }
  const kind = rng();
  if (kind < 0.15) return Buffer.from(Array.from({ length: int(rng, 2000) }, () => int(rng, 256)));
  if (kind < 0.2) return Buffer.alloc(0);
  if (route === '/v1/attest' || kind < 0.45) return Buffer.from(JSON.stringify(confuse(rng, await seeds.attest())));
  return Buffer.from(mutateYaml(rng, pick(rng, seeds.policies)));
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  0.5,
  '',
  'x'.repeat(70_000),
  [],
  [[]],
  {},
  { a: 1 },
  ['0'.repeat(64)],
  '0'.repeat(64),
  '\u0000',
  { __proto__: 1 },
];

/** A copy of `value` with a few leaves replaced by values of another type (or removed, or an extra key added). */
export function confuse(rng: Rng, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) return value.map((v) => confuse(rng, v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (chance(rng, 0.05)) continue;
      out[k] = chance(rng, 0.15) ? pick(rng, ODD_VALUES) : confuse(rng, v, depth + 1);
    }
    if (chance(rng, 0.05)) out[pick(rng, ['extra', '__proto__', 'constructor', 'type'])] = pick(rng, ODD_VALUES);
    return out;
  }
  return chance(rng, 0.1) ? pick(rng, ODD_VALUES) : value;
}

const YAML_PIECES = [
  '[',
  ']',
  '{',
  '}',
  ':',
  '- ',
  '&a ',
  '*a',
  '!!binary ',
  '!!js/function ',
  '|',
  '>',
  '"',
  "'",
  '\t',
  '\n  ',
  '#',
  '$$SCONE::',
  '$$',
  '0o777',
  '~',
  'null',
  '<<: *a',
  '%YAML 1.1\n',
  '---\n',
  '...\n',
];

function mutateYaml(rng: Rng, text: string): string {
  let lines = text.split('\n');
  for (let n = 1 + int(rng, 4); n > 0; n--) {
    const at = int(rng, lines.length);
    const op = rng();
    if (op < 0.25) lines.splice(at, 1);
    else if (op < 0.45) lines.splice(at, 0, lines[int(rng, lines.length)] ?? '');
    else if (op < 0.6) lines[at] = ` ${lines[at] ?? ''}`;
    else {
      const line = lines[at] ?? '';
      const cut = int(rng, line.length + 1);
      lines[at] = line.slice(0, cut) + pick(rng, YAML_PIECES) + line.slice(cut);
    }
  }
  if (chance(rng, 0.05)) lines = [`name: deep\nx: ${'['.repeat(200)}`];
  return lines.join('\n');
}

function randomText(rng: Rng, max: number): string {
  const alphabet = 'abcXYZ019_-.~/%=,;:!@ \u00e9\u4e2d';
  return Array.from({ length: 1 + int(rng, max) }, () => alphabet[int(rng, alphabet.length)]).join('');
}

/** The request's bytes on the wire, with a correct Content-Length unless it is sent chunked. */
export function wireBytes(req: FuzzRequest): Buffer {
  const fields = req.headers.map(([k, v]) => `${k}: ${v}`);
  const lines = [`${req.method} ${req.target} HTTP/1.1`, 'Host: localhost', ...fields];
  if (!req.chunked) {
    if (req.body.length > 0 || req.method === 'POST') lines.push(`Content-Length: ${req.body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), req.body]);
  }
  lines.push('Transfer-Encoding: chunked');
  const size = req.chunked === 'ok' ? req.body.length.toString(16) : 'zz';
  const framed = req.body.length > 0 ? [Buffer.from(`${size}\r\n`), req.body, Buffer.from('\r\n')] : [];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), ...framed, Buffer.from('0\r\n\r\n')]);
}
