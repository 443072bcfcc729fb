import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCas, type RunningCas } from '../../cas/server.js';
import { operationsLines } from '../../mesh/operations.js';
import { up, type MeshCas, type RunningMesh } from '../../mesh/up.js';
import { attestCas, hostKeyPath, loadHostKey } from '../../runtime/index.js';
import { CasClient } from '../cas-client.js';
import { loadIdentity, normalizeCasUrl, pinnedCas, veilHome } from '../home.js';
import { publishedTarget } from '../session-encryption.js';
import { defineCommand } from '../spec.js';
import { upEncryption } from '../upload-mode.js';

const VEIL_BIN = fileURLToPath(new URL('../../../bin/veil.js', import.meta.url));

/**
 * `veil up [-f mesh.yaml] [-t DIR] [--cas URL [-c FINGERPRINT]]`: the whole mesh on this machine. Without
 * --cas it starts an embedded CAS whose store lives in `<target>/cas`. Runs until SIGINT, SIGTERM or SIGHUP
 * (exit status 128 + the signal's number, after every service has stopped), or until a service ends by itself
 * (exit code 1). Services die with it even when it is killed with SIGKILL (parent-death.ts).
 */
export const upCommand = defineCommand(
  {
    name: 'up',
    usage: ['[-f mesh.yaml] [-t DIR] [--cas URL [-c FINGERPRINT]]'],
    summary: 'the whole mesh on this machine: an embedded CAS (or --cas), the sessions, every service under veil run',
    options: {
      filename: { type: 'string', short: 'f', value: 'FILE', description: 'the mesh manifest (default mesh.yaml)' },
      t: { type: 'string', value: 'DIR', description: 'target directory (default ./target)' },
      cas: { type: 'string', value: 'URL', description: 'a running CAS instead of the embedded one' },
      c: { type: 'string', value: 'FINGERPRINT', description: 'with --cas: the CA fingerprint to pin it by' },
      'ready-timeout': { type: 'string', value: 'SECONDS', description: 'how long each service may take to listen' },
    },
  },
  async ({ values }, io) => {
    const meshFile = values.filename ?? 'mesh.yaml';
    const target = resolve(values.t ?? 'target');
    const home = veilHome(io.env);
    // First of all: a script waiting for up.json must not take an earlier run's (left by a kill -9) for this
    // one's while keys load and the CAS starts.
    rmSync(join(target, 'up.json'), { force: true });
    const hostKey = await loadHostKey(hostKeyPath(io.env));
    // Listening from the start: a signal while the mesh comes up stops what was started, too.
    const abort = new AbortController();
    let signal: NodeJS.Signals | undefined;
    const signalled = io.untilSignal().then((s) => {
      signal = s;
      abort.abort();
      return s;
    });
    const log = (line: string) => io.out(`${line}\n`);
    let embedded: RunningCas | undefined;
    let cas: Awaited<ReturnType<typeof meshCas>> | undefined;
    let mesh: RunningMesh | undefined;
    try {
      embedded = values.cas
        ? undefined
        : await startCas({ host: '127.0.0.1', port: 0, dataDir: join(target, 'cas'), logLevel: 'warn' });
      cas = await meshCas(embedded, values.cas, values.c, home);
      log(`[veil] ${embedded ? 'embedded CAS' : 'CAS'} at ${cas.url} (CA fingerprint ${cas.fingerprint})`);
      for (const line of operationsLines(cas.url)) log(line);
      mesh = await up({
        meshFile,
        target,
        keysDir: join(home, 'shield-keys'),
        cas,
        veil: [process.execPath, VEIL_BIN],
        log,
        hostKey,
        abort: abort.signal,
        encryption: (m) => upEncryption(m, () => publishedTarget(cas!.client), embedded === undefined),
        ...(values['ready-timeout'] ? { readyTimeoutMs: Number(values['ready-timeout']) * 1000 } : {}),
      });
      log(`[veil] the mesh is up; ${join(target, 'up.json')} lists its addresses. Call it with:`);
      for (const line of mesh.howToCall) log(`  ${line}`);
      log('[veil] Ctrl-C stops everything.');
      const outcome = await Promise.race([signalled, mesh.broken.then((why) => ({ why }))]);
      if (typeof outcome === 'object') io.err(`veil up: ${outcome.why}; stopping the mesh\n`);
      return exitStatus(signal) ?? 1;
    } catch (err) {
      // Stopped by a signal while coming up: the conventional status, not an error report.
      const status = exitStatus(signal);
      if (status === undefined) throw err;
      return status;
    } finally {
      if (signal) log(`[veil] ${signal}: stopping the mesh`);
      await mesh?.stop();
      await cas?.close();
      await embedded?.close();
    }
  },
);

/** 128 + the signal's number, as a shell reports a command a signal ended. */
function exitStatus(signal: NodeJS.Signals | undefined): number | undefined {
  return signal ? 128 + constants.signals[signal] : undefined;
}

async function meshCas(
  embedded: RunningCas | undefined,
  url: string | undefined,
  fingerprint: string | undefined,
  home: string,
): Promise<MeshCas & { client: CasClient; close(): Promise<void> }> {
  const pin = embedded
    ? { url: embedded.url, fingerprint: embedded.identity.fingerprint, caPem: embedded.identity.caCertPem }
    : fingerprint
      ? await attestCas(normalizeCasUrl(url!), fingerprint, false)
      : pinnedCas(home, url);
  const client = new CasClient(pin, loadIdentity(home));
  return {
    url: pin.url,
    fingerprint: pin.fingerprint,
    currentHash: (name) => client.currentHash(name),
    postSession: (text) => client.postSession(text),
    putEncryptedSession: (envelope) => client.putEncryptedSession(envelope),
    client,
    publicValues: (session) => client.publicValues(session),
    close: () => client.close(),
  };
}
