import type { ParsedMesh } from '../manifests/index.js';
import { attestCas, type PinnedCas } from '../runtime/index.js';
import { CasClient } from './cas-client.js';
import { loadIdentity, normalizeCasUrl, pinnedCas, veilHome } from './home.js';
import type { Io } from './io.js';

type Cas = ParsedMesh['manifest']['cas'][number];

/** The mesh's CAS for sessions: the entry named `cas`, else the first (its index, for messages). */
export function meshCasEntry(mesh: ParsedMesh): { cas: Cas; index: number } {
  const index = Math.max(
    0,
    mesh.manifest.cas.findIndex((c) => (c.name ?? 'cas') === 'cas'),
  );
  return { cas: mesh.manifest.cas[index]!, index };
}

/**
 * The CAS a mesh is uploaded to: `--cas` or the mesh's first `cas[].cas_url`, trusted as `tolerance` and
 * `cas_key` say — `--only_for_testing-trust-any` accepts any CAS (tests only); a `cas_key` is the CA
 * fingerprint to check; otherwise the CAS must have been attested with `veil cas attest`.
 */
export async function meshStore(
  mesh: ParsedMesh,
  override: string | undefined,
  io: Io,
): Promise<{ store: CasClient; fingerprint: string; close(): Promise<void> }> {
  const { cas } = meshCasEntry(mesh);
  const url = normalizeCasUrl(override ?? cas.cas_url);
  const pin = await trust(
    url,
    cas.cas_key,
    (cas.tolerance ?? '').split(/\s+/).includes('--only_for_testing-trust-any'),
    io,
  );
  const client = new CasClient(pin, loadIdentity(veilHome(io.env)));
  return { store: client, fingerprint: pin.fingerprint, close: () => client.close() };
}

async function trust(url: string, casKey: string | undefined, trustAny: boolean, io: Io): Promise<PinnedCas> {
  if (casKey) return attestCas(url, casKey, false);
  if (trustAny) {
    io.err(`[VEIL|WARNING] trusting the CAS at ${url} without checking it (tolerance --only_for_testing-trust-any)\n`);
    return attestCas(url, undefined, true);
  }
  return pinnedCas(veilHome(io.env), url);
}
