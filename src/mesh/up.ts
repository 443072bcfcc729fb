import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  SERVICE_PATH,
  applyMesh,
  buildBundle,
  parseMeshManifest,
  parseServiceManifest,
  startOrder,
  type MeshPlan,
  type ParsedMesh,
  type SessionStore,
  type UploadEncryption,
} from '../manifests/index.js';
import { HOST_KEY_ENV } from '../runtime/host-key.js';
import { replaceFile } from '../runtime/rewrite.js';
import { freeLoopbackAddresses } from './addresses.js';
import { ServiceProcess, describe, stopped } from './service-process.js';

/** The CAS as `veil up` uses it: sessions, and the public values (the CA certificates clients need). */
export interface MeshCas extends SessionStore {
  url: string;
  fingerprint: string;
  publicValues(session: string): Promise<Record<string, { kind: string; value: string }>>;
}

export interface UpOptions {
  meshFile: string;
  target: string;
  keysDir: string;
  cas: MeshCas;
  /** How to start `veil` itself (node and its bin). */
  veil: string[];
  log(line: string): void;
  readyTimeoutMs?: number;
  /** This machine's host key (runtime/host-key.ts): its ID goes into the sessions, its path to every runtime. */
  hostKey: { id: string; path: string };
  /** Aborted (by a signal) while the mesh comes up: what was started is stopped, and up() rejects. */
  abort?: AbortSignal;
  /** The mesh's cas[].mode: how its sessions are encrypted to the CAS (undefined: plain), or a refusal. */
  encryption?(mesh: ParsedMesh): Promise<UploadEncryption | undefined>;
}

export interface UpInfo {
  cas_url: string;
  cas_fingerprint: string;
  ca_file: string | null;
  services: Record<string, { address: string; port: number; names: string[] }>;
}

export interface RunningMesh {
  info: UpInfo;
  /** How to call each service that has a public CA, as ready-to-run curl lines. */
  howToCall: string[];
  /** Settles when a service ends by itself: the mesh is then broken. */
  broken: Promise<string>;
  stop(): Promise<void>;
}

/**
 * `veil up`: applies the mesh's service manifests and the mesh (debug mode: simulation evidence) to the CAS,
 * then starts every service under `veil run`, in dependency order, each on its own loopback address with the
 * mesh's names mapped in its namespace, and waits until it listens before starting the next.
 */
export async function up(opts: UpOptions): Promise<RunningMesh> {
  const started: ServiceProcess[] = [];
  // up.json says "the mesh is up, here": whoever waits for it (make demo, a script, the tests) must never read
  // one half written, nor one that outlived the mesh. An earlier run's is removed by the caller, first of all
  // (`veil up` does so before it loads keys and starts a CAS, which take the longest).
  const upJson = join(opts.target, 'up.json');
  const stop = async () => {
    try {
      rmSync(upJson, { force: true });
    } catch {
      // Whatever keeps up.json (a directory in its place, a read-only target) must not keep the services running.
    }
    for (const s of [...started].reverse()) await s.stop();
  };
  try {
    applyServiceManifests(opts);
    const mesh = parseMeshManifest(readFileSync(opts.meshFile, 'utf8'), opts.meshFile, opts.target);
    // Each service gets its own loopback address, offered to its manifests as {{address}} (e.g. redis-server
    // --bind {{address}}): services then never collide with what else listens on this machine.
    const order = startOrder(mesh);
    const free = freeLoopbackAddresses(order.length);
    const addresses = new Map(order.map((s, i) => [s.name, s.variables.get('address') ?? free[i]!]));
    for (const s of mesh.services) if (!s.variables.has('address')) s.variables.set('address', addresses.get(s.name)!);
    const encryption = await opts.encryption?.(mesh);
    const { plan } = await applyMesh(mesh, {
      target: opts.target,
      keysDir: opts.keysDir,
      mode: 'debug',
      platforms: [opts.hostKey.id],
      store: opts.cas,
      ...(encryption ? { encryption } : {}),
    });
    if (opts.abort?.aborted) throw stopped('before its services started');
    opts.log(
      `[veil] sessions of ${plan.namespace} uploaded to ${opts.cas.url} (debug mode: simulation evidence accepted)`,
    );
    opts.log(
      '[veil] the mesh runs in debug mode: services attest with SIMULATION evidence (veil run --mode debug), ' +
        `not a TEE, signed by this host's key (platform ${opts.hostKey.id}, the one host the sessions list)`,
    );
    const hosts = plan.services.flatMap((s) => s.names.map((n) => `${n}=${addresses.get(s.name)}`));
    const info: UpInfo = { cas_url: opts.cas.url, cas_fingerprint: opts.cas.fingerprint, ca_file: null, services: {} };
    for (const service of plan.services) {
      const running = new ServiceProcess(spec(opts, service, hosts), opts.log);
      started.push(running);
      const port = await running.ready(opts.readyTimeoutMs ?? 30_000, opts.abort);
      info.services[service.name] = { address: addresses.get(service.name)!, port, names: service.names };
      opts.log(
        `[veil] ${service.name} is ready on ${addresses.get(service.name)}:${port} (${service.names.join(', ')})`,
      );
    }
    const howToCall = await publicCas(opts, plan, info);
    replaceFile(upJson, Buffer.from(`${JSON.stringify(info, null, 2)}\n`), 0o644, false);
    const broken = Promise.race(
      started.map(async (s) => {
        await s.whenExited();
        return `${s.spec.name} ended (${describe(s.exit!)})`;
      }),
    );
    return { info, howToCall, broken, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function spec(opts: UpOptions, service: MeshPlan['services'][number], hosts: string[]) {
  return {
    name: service.name,
    // Debug mode on both sides: the sessions tolerate simulation, and each runtime asks for it explicitly.
    argv: [...opts.veil, 'run', '--mode', 'debug', ...hosts.flatMap((h) => ['--host', h]), '--', service.program],
    // The host side of a service: only what the runtime needs. The program's own environment comes from the CAS.
    env: {
      PATH: SERVICE_PATH,
      SCONE_CONFIG_ID: service.configId,
      SCONE_CAS_ADDR: new URL(opts.cas.url).host,
      VEIL_CAS_FINGERPRINT: opts.cas.fingerprint,
      // The key whose ID the sessions list: the services' environment has no HOME or VEIL_HOME to find it by.
      [HOST_KEY_ENV]: opts.hostKey.path,
    },
  };
}

/**
 * The service manifests next to the mesh (`<dir>/service.yaml`, `<dir>/*\/service.yaml`) are applied first,
 * so `veil up -f mesh.yaml` needs nothing built beforehand.
 */
function applyServiceManifests(opts: UpOptions): void {
  const dir = dirname(resolve(opts.meshFile));
  const candidates = [
    join(dir, 'service.yaml'),
    ...readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name, 'service.yaml')),
  ];
  for (const file of candidates.filter((f) => existsSync(f))) {
    const parsed = parseServiceManifest(readFileSync(file, 'utf8'), shortPath(file), dirname(file));
    const { bundle } = buildBundle(parsed, { target: opts.target, keysDir: opts.keysDir });
    opts.log(`[veil] applied ${shortPath(file)}: ${bundle.name} (${bundle.image})`);
  }
}

/** Each public CA certificate is written next to up.json, with a curl line for the service it vouches for. */
async function publicCas(opts: UpOptions, plan: MeshPlan, info: UpInfo): Promise<string[]> {
  const lines: string[] = [];
  for (const service of plan.services) {
    const values = await opts.cas.publicValues(service.session);
    const ca = Object.entries(values).find(([, v]) => v.kind === 'x509-ca');
    if (!ca) continue;
    const file = join(opts.target, 'public', `${service.name}-${ca[0]}.crt`);
    mkdirSync(dirname(file), { recursive: true });
    replaceFile(file, Buffer.from(ca[1].value), 0o644, false);
    info.ca_file ??= file;
    const { address, port, names } = info.services[service.name]!;
    const name = names.find((n) => n !== service.name) ?? service.name;
    lines.push(`curl --cacert ${shortPath(file)} --resolve ${name}:${port}:${address} https://${name}:${port}/`);
  }
  return lines;
}

/** A path as the user would type it from here: relative when below the working directory, else absolute. */
function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}
