/** `veil cas serve`: its flags, one process or the cluster's primary and workers (README "The CAS on every core"). */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  clusterFork,
  initializedStore,
  runPrimary,
  serveAsWorker,
  workerShares,
  workerSlotOf,
} from '../../cas/cluster.js';
import { workerLedger } from '../../cas/ledger.js';
import { findSelfEvidence } from '../../cas/self-attestation.js';
import { COLLATERAL_OPTIONS, collateralOf } from '../collateral-flags.js';
import { usage } from '../errors.js';
import type { Io } from '../io.js';
import { veilHome } from '../home.js';
import { warnPasswordInArgs } from '../store-url.js';
import { defineCommand } from '../spec.js';
import {
  auditAdminFlags,
  LIMIT_OPTIONS,
  LOG_LEVELS,
  limitsFromFlags,
  logLevelFlag,
  parseListen,
  remoteCasFlags,
  storeFlags,
  workersFlag,
} from '../serve-flags.js';

export const serve = defineCommand(
  {
    name: 'cas serve',
    usage: [
      '[--listen HOST:PORT] [--data DIR | --store postgres://USER@HOST:PORT/DB] [--master-key-file F] ' +
        '[--name DNS]... [--remote-cas HOST:PORT=KEY]... [--audit-admin KEY_HASH]... ' +
        '[--collateral F|DIR]... [--workers N]',
    ],
    summary: 'runs the CAS (HTTPS); prints its URL and CA fingerprint; stops on SIGINT/SIGTERM/SIGHUP',
    options: {
      listen: {
        type: 'string',
        value: 'HOST:PORT',
        description: 'where to listen (default 127.0.0.1:8081; port 0: any)',
      },
      data: { type: 'string', value: 'DIR', description: 'the embedded SQLite store (default $VEIL_HOME/cas)' },
      store: {
        type: 'string',
        value: 'URL',
        description:
          'postgres://USER@HOST:PORT/DB shared by replicas (or VEIL_CAS_STORE; password in it or PGPASSWORD); ' +
          'needs the master key given',
      },
      'master-key-file': { type: 'string', value: 'FILE', description: "the store's master key (or VEIL_MASTER_KEY)" },
      name: { type: 'string', multiple: true, value: 'DNS', description: "a DNS name in the CAS's certificate" },
      'remote-cas': {
        type: 'string',
        multiple: true,
        value: 'HOST:PORT=CAS_KEY',
        description: 'another CAS imports may fetch from (its address and CA fingerprint); none by default',
      },
      'audit-admin': {
        type: 'string',
        multiple: true,
        value: 'KEY_HASH',
        description: 'a client key hash that sees the whole audit log and may export it (or VEIL_CAS_AUDIT_ADMINS)',
      },
      'log-level': {
        type: 'string',
        value: 'LEVEL',
        description: `JSON log lines on stdout from this level on: ${LOG_LEVELS.join(', ')} (default warn)`,
      },
      'body-limit': { type: 'string', value: 'BYTES', description: 'largest request body' },
      tee: {
        type: 'string',
        value: 'auto|none',
        description: 'auto: attest itself with configfs-tsm evidence when in a CVM',
      },
      workers: {
        type: 'string',
        value: 'N|auto',
        description:
          'CAS processes sharing the port and the store (or VEIL_CAS_WORKERS; auto: one per core; default 1)',
      },
      ...LIMIT_OPTIONS,
      ...COLLATERAL_OPTIONS,
    },
  },
  async ({ values }, io) => {
    const workers = workersFlag(values.workers, io.env, availableParallelism());
    const worker = workerSlotOf(io.env);
    const primary = worker === undefined && workers > 1;
    values.listen ??= '127.0.0.1:8081';
    values['log-level'] ??= 'warn';
    values.tee ??= 'auto';
    const { host, port } = parseListen(values.listen);
    const logLevel = logLevelFlag(values['log-level']);
    const { limits, nonceLimits, storeLimits } = limitsFromFlags(values);
    const collateral = await collateralOf(values, { warm: !primary });
    if (values.tee !== 'auto' && values.tee !== 'none')
      throw usage(
        `--tee ${values.tee} is not auto or none`,
        'auto: evidence from configfs-tsm when this is a confidential VM',
      );
    const self = values.tee === 'auto' ? await findSelfEvidence(io.env) : { base: '' };
    if (worker === undefined) warnPasswordInArgs(values.store, io);
    // Flags are checked here, in the primary too: a usage error stops it before any worker is forked.
    const serveOptions = {
      host,
      port,
      dataDir: values.data ?? join(veilHome(io.env), 'cas'),
      ...storeFlags(values.store, io.env),
      storeLimits,
      ...(values['master-key-file'] ? { masterKeyFile: values['master-key-file'] } : {}),
      ...(io.env['VEIL_MASTER_KEY'] ? { masterKeyEnv: io.env['VEIL_MASTER_KEY'] } : {}),
      names: values.name ?? [],
      remoteCas: remoteCasFlags(values['remote-cas'] ?? []),
      auditAdmins: auditAdminFlags(values['audit-admin'] ?? [], io.env),
      logLevel,
      ...(values['body-limit'] ? { bodyLimit: Number(values['body-limit']) } : {}),
      collateral,
      ...(self.source ? { selfEvidence: self.source } : {}),
    };
    if (primary) {
      notes(io, self, collateral !== undefined);
      return runPrimary({
        workers,
        together: initializedStore(serveOptions),
        fork: clusterFork(workers),
        now: Date.now,
        out: io.out,
        err: io.err,
        untilSignal: io.untilSignal,
      });
    }
    // The server's modules only where a CAS runs: the cluster primary forks and supervises, nothing more, and
    // so reaches its first fork without loading them (README "Measured", restart to ready).
    const { startCas } = await import('../../cas/server.js');
    // Each worker takes its share of the caps stated in all and of those it keeps itself (README "Limits"); the
    // primary's ledger counts the slots per address and per key for all of them.
    const shares = worker
      ? workerShares(worker.count, { limits, nonceLimits, storeLimits })
      : { limits, nonceLimits, storeLimits };
    const inCluster = worker ? { worker: worker.slot, ledger: workerLedger(worker.slot, io.out) } : {};
    const start = () => startCas({ ...serveOptions, ...shares, ...inCluster });
    if (worker) return serveAsWorker(start, io.untilSignal);
    const cas = await start();
    io.out(`CAS listening at ${cas.url}\nCA fingerprint (SHA-256): ${cas.identity.fingerprint}\n`);
    notes(io, self, collateral !== undefined);
    await io.untilSignal();
    await cas.close();
    return 0;
  },
);

/** What the operator should know about this CAS's trust, once (by the primary with --workers N). */
function notes(io: Io, self: { source?: unknown; base: string }, collateral: boolean): void {
  io.err(
    self.source
      ? `[VEIL|INFO] this CAS attests itself with TEE evidence from configfs-tsm (${self.base}); clients verify it with veil cas attest\n`
      : '[VEIL|NOTE] no TEE here: clients can trust this CAS only by its CA fingerprint\n',
  );
  if (!collateral)
    io.err(
      '[VEIL|NOTE] no collateral (--collateral DIR, --pcs-url URL): SGX and TDX evidence will be refused as of unknown TCB status\n',
    );
}
