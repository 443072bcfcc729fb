import { memoryAuditLog } from './audit-testing.js';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { attest } from './attest.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { NonceStore } from './nonces.js';
import type { CasContext } from './sessions.js';
import { loadMasterKey, openSqliteStore, type Store } from './store/index.js';
import { ephemeral } from './testing.js';

/** For the renewal tests: CAS contexts on one SQLite file with a clock the test moves, and attestation. */
export const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();

/** A CA and a 30-second leaf it issues, the certificates the renewal tests watch fall due. */
export const LEAF_SECRETS = [
  '{name: ca_key, kind: private-key}',
  '{name: ca, kind: x509-ca, private_key: ca_key, valid_for: 1 hour}',
  '{name: leaf_key, kind: private-key}',
  '{name: leaf, kind: x509, private_key: leaf_key, issuer: ca, dns: [api], valid_for: 30s}',
];

/** A session whose service `api` receives `files` (path → content with placeholders). */
export function policy(name: string, secrets: string[], files: Record<string, string>): string {
  return [
    `name: ${name}`,
    'services:',
    `  - {name: api, mrenclaves: [${program}], platforms: [${host.id}], command: run, image_name: img}`,
    'images:',
    '  - name: img',
    '    injection_files:',
    ...Object.entries(files).map(([path, content]) => `      - {path: ${path}, content: "${content}"}`),
    'secrets:',
    ...secrets.map((s) => `  - ${s}`),
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');
}

/** Simulation evidence from the test host for this nonce and connection key. */
export function simulationFor(nonce: string, spki: Buffer) {
  return signedSimulation(host, program, { nonce: Buffer.from(nonce, 'hex'), spki });
}

export interface Clock {
  at: number;
  now: () => Date;
}

export function clock(): Clock {
  const c: Clock = { at: Date.now(), now: () => new Date(c.at) };
  return c;
}

/** A data directory removed after the file's tests; `open` gives one more CAS (a replica) on it. */
export function sharedDir(prefix: string): { dir: string; open: (time: Clock, wrap?: (s: Store) => Store) => Cas } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stores: Store[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    open: (time, wrap = (s) => s) => {
      const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
      stores.push(store);
      return casOf({ store: wrap(store), now: time.now, audit: memoryAuditLog() });
    },
  };
}

export interface Cas {
  ctx: CasContext;
  attestApi(session: string): Promise<Released>;
}

export interface Released {
  files: Record<string, string>;
  renewed: string[];
  renewAt: number | undefined;
}

export function casOf(ctx: CasContext): Cas {
  const nonces = new NonceStore(ctx.now);
  return {
    ctx,
    async attestApi(session) {
      const rt: ClientIdentity = identityFromPem(ephemeral().certPem);
      const nonce = nonces.issue(rt.keyHash).toString('hex');
      const evidence = simulationFor(nonce, rt.spki);
      const out = await attest(ctx, nonces, { config_id: `${session}/api`, nonce, evidence }, rt);
      const files = Object.fromEntries(out.config.injectionFiles.map((f) => [f.path, f.content.toString()]));
      return { files, renewed: out.renewed, renewAt: out.renewAt };
    },
  };
}

/** The one certificate of a PEM file. */
export const certOf = (pem: string | undefined) => new X509Certificate(pem ?? '');

export const spkiOf = (pem: string | undefined) =>
  certOf(pem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');

/** When a PEM certificate reaches two thirds of its lifetime. */
export function twoThirds(pem: string | undefined): number {
  const cert = certOf(pem);
  const from = Date.parse(cert.validFrom);
  return from + ((Date.parse(cert.validTo) - from) * 2) / 3;
}

/** A store whose putRenewal waits until `parties` callers are in it: renewals that truly race. */
export function racing(parties: number): (s: Store) => Store {
  let waiting: Array<() => void> = [];
  const barrier = () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (waiting.length === parties) {
        for (const go of waiting) go();
        waiting = [];
      }
    });
  return (store) =>
    new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== 'putRenewal') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: Parameters<Store['putRenewal']>) => {
          await barrier();
          return target.putRenewal(...args);
        };
      },
    });
}
