import { parsePublicKey } from '../encryption/index.js';
import type { ParsedMesh, SessionStore, UploadEncryption } from '../manifests/index.js';
import { parseSession } from '../policy/index.js';
import type { CasClient } from './cas-client.js';
import { CliError, usage } from './errors.js';
import type { Io } from './io.js';
import { loadIdentity, veilHome } from './home.js';
import { meshCasEntry, meshStore } from './mesh-cas.js';

import { signatureOver } from './session-signing.js';
import { creatorBinding } from './uploader.js';
import { checkExpectedKey, encryptUpload, publishedTarget, type EncryptionTarget } from './session-encryption.js';

type Cas = ParsedMesh['manifest']['cas'][number];
export type UploadMode = NonNullable<Cas['mode']>;

/** How `veil apply` / `veil up` hand the sessions to the CAS, as `cas[].mode` says. */
export interface MeshUpload {
  mode: UploadMode;
  store?: SessionStore;
  fingerprint?: string;
  encryption?: UploadEncryption;
  /** Said in the output: what this mode did not do. */
  note?: string;
  close(): Promise<void>;
}

const ENCRYPTED: ReadonlySet<UploadMode> = new Set(['EncryptedManifest', 'EncryptedOnly']);

/**
 * `Upload`: plain (POST /v1/sessions). `EncryptedManifest`: each session encrypted to the key the pinned CAS
 * publishes (checked against `cas_encryption_key` when given) and sent to PUT /v1/encrypted_sessions.
 * `EncryptedOnly`: the same, and nothing of the sessions in plaintext under target/. `NoUpload`: written only.
 * `SignedManifest`: plain, each upload signed with the CLI identity's key (the CAS checks the signature wherever
 * the session's access_policy names that key as a `signer`). `SignOnline` is refused by name. With --dry-run the encrypted modes encrypt offline when
 * the mesh gives both `cas_encryption_key` and `cas_key` (the CA fingerprint the envelope binds).
 */
export async function meshUpload(
  mesh: ParsedMesh,
  opts: { dryRun: boolean; cas: string | undefined },
  io: Io,
): Promise<MeshUpload> {
  const { cas, index } = meshCasEntry(mesh);
  const mode = cas.mode ?? 'Upload';
  refuseUnsupported(mode, `cas[${index}].mode`);
  const none = { mode, close: async () => {} };
  if (mode === 'NoUpload') return { ...none, note: `cas[${index}].mode NoUpload: nothing was uploaded` };
  if (opts.dryRun) return dryRun(mode, cas, index, () => loadIdentity(veilHome(io.env)).keyHash);
  const { store, fingerprint, close } = await meshStore(mesh, opts.cas, io);
  if (mode === 'SignedManifest') {
    const { keyPem, keyHash } = loadIdentity(veilHome(io.env));
    return { mode, store: signingStore(store, keyPem, keyHash), fingerprint, close };
  }
  // A plain upload needs no key, but a cas_encryption_key given still names the CAS: it is checked, not ignored.
  if (!ENCRYPTED.has(mode) && cas.cas_encryption_key === undefined) return { mode, store, fingerprint, close };
  try {
    const target = await publishedTarget(store);
    checkExpectedKey(target, cas.cas_encryption_key, `cas[${index}].cas_encryption_key`);
    if (!ENCRYPTED.has(mode)) return { mode, store, fingerprint, close };
    return { mode, store, fingerprint, close, encryption: encryptionTo(target, mode) };
  } catch (err) {
    await close();
    throw err;
  }
}

function encryptionTo(target: EncryptionTarget, mode: UploadMode): UploadEncryption {
  return { encrypt: (text) => encryptUpload(target, text), only: mode === 'EncryptedOnly' };
}

/**
 * Every session uploaded with the CLI identity's signature over it (as `veil session sign sign-with-cli-identity`);
 * a create's signature names this CLI, which uploads it, as the uploader.
 */
function signingStore(client: CasClient, keyPem: string, keyHash: string): SessionStore {
  const sign = (text: string) => {
    const session = parseSession(text);
    return signatureOver(
      text,
      session.name,
      keyPem,
      creatorBinding(session.predecessor, () => keyHash),
    );
  };
  return {
    currentHash: (name) => client.currentHash(name),
    postSession: (text) => client.postSession(text, [sign(text)]),
  };
}

function refuseUnsupported(mode: UploadMode, where: string, command = 'apply'): void {
  if (mode === 'SignedManifest' && command === 'up') {
    throw new CliError('CLI_UNSUPPORTED', `${where} SignedManifest is not supported by veil up`, {
      hint: "upload the signed sessions with 'veil apply -f mesh.yaml', or use Upload or EncryptedManifest for veil up",
    });
  }
  if (mode === 'SignOnline') {
    throw new CliError('CLI_UNSUPPORTED', `${where} SignOnline is not supported by Veil`, {
      hint: "SCONE's scripts sign with an online signing service, which Veil does not have: use EncryptedManifest",
    });
  }
}

/** Offline, the envelope names this CLI's identity as its uploader: the one `veil apply` would send it with. */
function dryRun(mode: UploadMode, cas: Cas, index: number, uploader: () => string): MeshUpload {
  const close = async () => {};
  if (!ENCRYPTED.has(mode)) return { mode, close };
  const fingerprint = cas.cas_key?.trim().toLowerCase();
  if (cas.cas_encryption_key && fingerprint && /^[0-9a-f]{64}$/.test(fingerprint)) {
    const publicKey = parsePublicKey(cas.cas_encryption_key, `cas[${index}].cas_encryption_key`);
    return { mode, close, encryption: encryptionTo({ publicKey, fingerprint, uploader: uploader() }, mode) };
  }
  if (mode === 'EncryptedOnly') {
    throw usage(
      `cas[${index}].mode EncryptedOnly with --dry-run needs cas_encryption_key and cas_key (the CA fingerprint)`,
      "encrypting without asking the CAS needs both: 'veil cas show-identification' prints them",
    );
  }
  return { mode, close, note: 'not encrypted (--dry-run, and the mesh gives no cas_encryption_key and cas_key)' };
}

/**
 * `veil up`: the same modes against its CAS (embedded, or --cas). The mesh's `cas_encryption_key` is checked only
 * against a CAS the mesh names (--cas): an embedded CAS is made here, and its key is new.
 */
export async function upEncryption(
  mesh: ParsedMesh,
  target: () => Promise<EncryptionTarget>,
  checkKey: boolean,
): Promise<UploadEncryption | undefined> {
  const { cas, index } = meshCasEntry(mesh);
  const mode = cas.mode ?? 'Upload';
  refuseUnsupported(mode, `cas[${index}].mode`, 'up');
  if (mode === 'NoUpload') {
    throw usage(
      `cas[${index}].mode NoUpload uploads nothing, and veil up needs the sessions on its CAS`,
      'use Upload or EncryptedManifest for veil up; veil apply -f mesh.yaml writes the sessions without uploading',
    );
  }
  if (!ENCRYPTED.has(mode)) return undefined;
  const published = await target();
  if (checkKey) checkExpectedKey(published, cas.cas_encryption_key, `cas[${index}].cas_encryption_key`);
  return encryptionTo(published, mode);
}
