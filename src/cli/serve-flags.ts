import type { ConnectionLimits } from '../cas/limits.js';
import type { NonceLimits } from '../cas/nonces.js';
import { parseRemoteCas, type RemoteSource } from '../cas/remote-allow.js';
import type { PostgresLimits } from '../cas/store/index.js';
import { usage } from './errors.js';

/** `veil cas serve` flags for the limits of README "Limits" (unset: the defaults). */
const LIMIT_FLAGS = {
  'handshake-timeout': 'handshakeTimeoutMs',
  'headers-timeout': 'headersTimeoutMs',
  'request-timeout': 'requestTimeoutMs',
  'keep-alive-timeout': 'keepAliveTimeoutMs',
  'idle-timeout': 'idleTimeoutMs',
  'max-connections': 'maxConnections',
  'max-connections-per-address': 'maxConnectionsPerAddress',
  'max-writes-per-address': 'maxWritesPerAddress',
  'max-writes': 'maxWrites',
  'write-ms-per-second-per-address': 'writeMsPerSecondPerAddress',
} as const satisfies Record<string, keyof ConnectionLimits>;
const NONCE_FLAGS = {
  'max-nonces-per-client': 'perClient',
  'max-nonces': 'max',
} as const satisfies Record<string, keyof NonceLimits>;
/** README "The CAS on PostgreSQL": what one CAS process asks of the database. */
const STORE_FLAGS = {
  'store-pool-size': 'poolSize',
  'store-connect-timeout': 'connectTimeoutMs',
  'store-statement-timeout': 'statementTimeoutMs',
} as const satisfies Record<string, keyof PostgresLimits>;
const sectionOf = (flag: string) => (flag in STORE_FLAGS ? 'The CAS on PostgreSQL' : 'Limits');
export const LIMIT_OPTIONS = Object.fromEntries(
  [...Object.keys(LIMIT_FLAGS), ...Object.keys(NONCE_FLAGS), ...Object.keys(STORE_FLAGS)].map((flag) => [
    flag,
    {
      type: 'string' as const,
      value: /timeout/.test(flag) ? 'MS' : 'N',
      description: `README "${sectionOf(flag)}": ${flag.replace(/-/g, ' ')} (default there)`,
    },
  ]),
) as unknown as Record<
  keyof typeof LIMIT_FLAGS | keyof typeof NONCE_FLAGS | keyof typeof STORE_FLAGS,
  { type: 'string'; description: string }
>;

/** The store: --store, else VEIL_CAS_STORE (how a Kubernetes Secret passes it), else SQLite in --data. */
export function storeFlags(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { store?: string; storePassword?: string } {
  const store = flag ?? (env['VEIL_CAS_STORE'] || undefined);
  if (store === undefined) return {};
  if (!/^postgres(ql)?:\/\//.test(store))
    throw usage(
      `--store (or VEIL_CAS_STORE) is not a postgres:// URL`,
      'give postgres://USER@HOST:PORT/DB, or leave it out for the embedded SQLite store in --data',
    );
  return { store, ...(env['PGPASSWORD'] ? { storePassword: env['PGPASSWORD'] } : {}) };
}

export function limitsFromFlags(values: Partial<Record<string, unknown>>): {
  limits: Partial<ConnectionLimits>;
  nonceLimits: Partial<NonceLimits>;
  storeLimits: Partial<PostgresLimits>;
} {
  const count = (flag: string): number | undefined => {
    const value = values[flag];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !/^[1-9]\d{0,8}$/.test(value)) {
      throw usage(
        `--${flag} '${String(value)}' is not a positive whole number`,
        'timeouts are in milliseconds, caps are counts (see README, Limits)',
      );
    }
    return Number(value);
  };
  const pick = <K extends string>(flags: Record<string, K>) =>
    Object.fromEntries(
      Object.entries(flags).flatMap(([flag, key]) => {
        const value = count(flag);
        return value === undefined ? [] : [[key, value]];
      }),
    ) as Partial<Record<K, number>>;
  return { limits: pick(LIMIT_FLAGS), nonceLimits: pick(NONCE_FLAGS), storeLimits: pick(STORE_FLAGS) };
}

export function remoteCasFlags(values: string[]): RemoteSource[] {
  return values.map((value) => {
    try {
      return parseRemoteCas(value);
    } catch (err) {
      throw usage(`--remote-cas '${value}' is not HOST[:PORT]=CAS_KEY`, (err as { hint?: string }).hint ?? '');
    }
  });
}

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!match)
    throw usage(`--listen '${listen}' is not HOST:PORT`, 'e.g. --listen 127.0.0.1:8081 (port 0 picks a free one)');
  return { host: match[1]!, port: Number(match[2]) };
}

/** pino's levels, most to least verbose; silent logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function logLevelFlag(value: string): (typeof LOG_LEVELS)[number] {
  const level = LOG_LEVELS.find((l) => l === value);
  if (!level) throw usage(`--log-level '${value}' is not a log level`, `use one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/**
 * The audit administrators: --audit-admin (repeatable) and VEIL_CAS_AUDIT_ADMINS (comma separated), each a key
 * hash as `veil self show-key-hash` prints it (64 hex digits).
 */
export function auditAdminFlags(flags: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const fromEnv = (env['VEIL_CAS_AUDIT_ADMINS'] ?? '').split(',').map((s) => s.trim());
  const all = [...flags, ...fromEnv].filter((s) => s !== '');
  for (const value of all) {
    if (!/^[0-9a-fA-F]{64}$/.test(value)) {
      throw usage(
        `--audit-admin (or VEIL_CAS_AUDIT_ADMINS) '${value.slice(0, 80)}' is not a key hash`,
        'give the 64 hex digits `veil self show-key-hash` prints for the administrator',
      );
    }
  }
  return [...new Set(all.map((k) => k.toLowerCase()))];
}

/**
 * --workers N|auto, else VEIL_CAS_WORKERS, else 1 (README "The CAS on every core"). One by default: inside a
 * container the core count Node sees may be the host's, /metrics answers per worker and a few caps stay per
 * worker (README "Limits") — using every core is the operator's choice.
 */
export function workersFlag(value: string | undefined, env: NodeJS.ProcessEnv, cores: number): number {
  const given = value ?? (env['VEIL_CAS_WORKERS'] || undefined);
  if (given === undefined) return 1;
  if (given === 'auto') return Math.max(1, cores);
  if (!/^[1-9]\d{0,2}$/.test(given))
    throw usage(
      `--workers (or VEIL_CAS_WORKERS) '${given}' is neither a number of processes from 1 to 999 nor 'auto'`,
      'e.g. --workers 2, or --workers auto for one per core; 1 runs the CAS in this one process',
    );
  return Number(given);
}
