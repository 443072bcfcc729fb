import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { startOrder, type ParsedMesh } from './mesh.js';
import { generateSessions, policyText, type GeneratedSession, type SessionOptions } from './sessions.js';

/** The CAS as the mesh needs it: the current hash of a session (if any), and uploading a new version. */
export interface SessionStore {
  currentHash(name: string): Promise<string | undefined>;
  postSession(text: string): Promise<{ status: number; hash: string }>;
  /** PUT /v1/encrypted_sessions: an envelope only the CAS opens (cas[].mode EncryptedManifest, EncryptedOnly). */
  putEncryptedSession?(envelope: string): Promise<{ status: number; hash: string }>;
}

/**
 * Encrypted upload (cas[].mode EncryptedManifest or EncryptedOnly): each session is encrypted to the CAS and the
 * envelope written to `<target>/policies/<name>.encrypted.json`; `only` (EncryptedOnly) writes no plaintext
 * policy there at all, not even the one with secret values left out.
 */
export interface UploadEncryption {
  encrypt(text: string): Promise<string>;
  only: boolean;
}

export interface AppliedSession {
  name: string;
  action: 'created' | 'updated' | 'written only';
  hash?: string;
  /** The envelope written (encrypted modes), relative to the target directory. */
  envelope?: string;
}

/** What `veil up` reads back: the services in start order, with what the host needs to start each. */
export interface MeshPlan {
  namespace: string;
  /** `configId` is SCONE's `<namespace>/<service>/<program>`: the session and the service in it. */
  services: Array<{
    name: string;
    session: string;
    configId: string;
    program: string;
    dependsOn: string[];
    names: string[];
  }>;
}

/**
 * Generates the sessions, writes them (without secret values) under `<target>/policies/`, and uploads them:
 * the namespace first, then each service after those it imports from, each as an update of the version the
 * CAS has (its hash as predecessor) when there is one.
 */
export async function applyMesh(
  mesh: ParsedMesh,
  opts: SessionOptions & { target: string; store?: SessionStore | undefined; encryption?: UploadEncryption },
): Promise<{ sessions: AppliedSession[]; plan: MeshPlan }> {
  const generated = generateSessions(mesh, opts);
  for (const g of generated) writePolicy(opts.target, g, opts.encryption?.only === true);
  const plan = meshPlan(mesh);
  writeFileSync(join(opts.target, 'mesh.json'), `${JSON.stringify(plan, null, 2)}\n`);
  const sessions: AppliedSession[] = [];
  for (const g of uploadOrder(generated, plan)) sessions.push(await applyOne(opts, g));
  return { sessions, plan };
}

/** EncryptedOnly leaves no plaintext policy behind, not even one an earlier apply in another mode wrote. */
function writePolicy(target: string, g: GeneratedSession, encryptedOnly: boolean): void {
  const path = join(target, 'policies', `${g.name}.yaml`);
  if (encryptedOnly) {
    rmSync(path, { force: true });
    return;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, policyText(g));
}

async function applyOne(
  opts: { target: string; store?: SessionStore | undefined; encryption?: UploadEncryption },
  g: GeneratedSession,
): Promise<AppliedSession> {
  if (!opts.encryption) return opts.store ? upload(opts.store, g) : { name: g.name, action: 'written only' };
  const predecessor = opts.store ? await opts.store.currentHash(g.name) : undefined;
  const envelope = await opts.encryption.encrypt(uploadText(g, predecessor));
  const file = join('policies', `${g.name}.encrypted.json`);
  mkdirSync(dirname(join(opts.target, file)), { recursive: true });
  writeFileSync(join(opts.target, file), envelope);
  if (!opts.store) return { name: g.name, action: 'written only', envelope: file };
  if (!opts.store.putEncryptedSession) throw new TypeError('an encrypted upload needs putEncryptedSession');
  const { hash } = await opts.store.putEncryptedSession(envelope);
  return { name: g.name, action: predecessor ? 'updated' : 'created', hash, envelope: file };
}

function uploadText(g: GeneratedSession, predecessor: string | undefined): string {
  return JSON.stringify(predecessor ? { ...g.session, predecessor } : g.session);
}

function uploadOrder(generated: GeneratedSession[], plan: MeshPlan): GeneratedSession[] {
  const byName = new Map(generated.map((g) => [g.name, g]));
  return [generated[0]!, ...plan.services.map((s) => byName.get(s.session)!)];
}

async function upload(store: SessionStore, g: GeneratedSession): Promise<AppliedSession> {
  const predecessor = await store.currentHash(g.name);
  const { hash } = await store.postSession(uploadText(g, predecessor));
  return { name: g.name, action: predecessor ? 'updated' : 'created', hash };
}

function meshPlan(mesh: ParsedMesh): MeshPlan {
  return {
    namespace: mesh.namespace,
    services: startOrder(mesh).map((s) => ({
      name: s.name,
      session: `${mesh.namespace}/${s.name}`,
      configId: `${mesh.namespace}/${s.name}/${basename(s.bundle.command[0]!)}`,
      program: s.bundle.command[0]!,
      dependsOn: s.dependsOn,
      names: [...new Set([s.name, ...serverNames(s.bundle.secrets.global)])],
    })),
  };
}

/** The DNS names a service answers to: those of the certificates it defines for itself (not client ones). */
function serverNames(
  secrets: Array<{ kind?: string | undefined; dns?: string[] | undefined; endpoint?: string | undefined }>,
): string[] {
  return secrets
    .filter((s) => s.kind === 'x509' && s.endpoint !== 'client')
    .flatMap((s) => s.dns ?? [])
    .filter((d) => !d.includes('{{'));
}
