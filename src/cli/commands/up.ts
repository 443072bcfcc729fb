import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCas, type RunningCas } from '../../cas/server.js';
import { up, type MeshCas, type RunningMesh } from '../../mesh/up.js';
import { attestCas, hostKeyPath, loadHostKey } from '../../runtime/index.js';
import { CasClient } from '../cas-client.js';
import { loadIdentity, normalizeCasUrl, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';

const VEIL_BIN = fileURLToPath(new URL('../../../bin/veil.js', import.meta.url));

/**
 * `veil up [-f mesh.yaml] [-t DIR] [--cas URL [-c FINGERPRINT]]`: the whole mesh on this machine. Without
 * --cas it starts an embedded CAS whose store lives in `<target>/cas`. Runs until SIGINT or SIGTERM, or
 * until a service ends by itself (exit code 1).
 */
export async function upCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { f: { type: 'string' }, filename: { type: 'string' }, t: { type: 'string' }, cas: { type: 'string' }, c: { type: 'string' }, 'ready-timeout': { type: 'string' } },
    strict: true,
  });
  const meshFile = values.f ?? values.filename ?? 'mesh.yaml';
  const target = resolve(values.t ?? 'target');
  const home = veilHome(io.env);
  const hostKey = await loadHostKey(hostKeyPath(io.env));
  const embedded = values.cas ? undefined : await startCas({ host: '127.0.0.1', port: 0, dataDir: join(target, 'cas'), logLevel: 'warn' });
  const cas = await meshCas(embedded, values.cas, values.c, home);
  const log = (line: string) => io.out(`${line}\n`);
  let mesh: RunningMesh | undefined;
  try {
    log(`[veil] ${embedded ? 'embedded CAS' : 'CAS'} at ${cas.url} (CA fingerprint ${cas.fingerprint})`);
    mesh = await up({
      meshFile, target, keysDir: join(home, 'shield-keys'), cas, veil: [process.execPath, VEIL_BIN], log, hostKey,
      ...(values['ready-timeout'] ? { readyTimeoutMs: Number(values['ready-timeout']) * 1000 } : {}),
    });
    log(`[veil] the mesh is up; ${join(target, 'up.json')} lists its addresses. Call it with:`);
    for (const line of mesh.howToCall) log(`  ${line}`);
    log('[veil] Ctrl-C stops everything.');
    const outcome = await Promise.race([io.untilSignal().then(() => 'signal'), mesh.broken]);
    if (outcome !== 'signal') io.err(`veil up: ${outcome}; stopping the mesh\n`);
    return outcome === 'signal' ? 0 : 1;
  } finally {
    await mesh?.stop();
    await cas.close();
    await embedded?.close();
  }
}

async function meshCas(embedded: RunningCas | undefined, url: string | undefined, fingerprint: string | undefined, home: string): Promise<MeshCas & { close(): Promise<void> }> {
  const pin = embedded
    ? { url: embedded.url, fingerprint: embedded.identity.fingerprint, caPem: embedded.identity.caCertPem }
    : fingerprint ? await attestCas(normalizeCasUrl(url!), fingerprint, false) : pinnedCas(home, url);
  const client = new CasClient(pin, loadIdentity(home));
  return {
    url: pin.url,
    fingerprint: pin.fingerprint,
    currentHash: (name) => client.currentHash(name),
    postSession: (text) => client.postSession(text),
    publicValues: (session) => client.publicValues(session),
    close: () => client.close(),
  };
}
