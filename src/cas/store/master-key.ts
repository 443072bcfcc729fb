import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';
import { DATABASE_FILES } from './sqlite.js';

/**
 * The key that seals everything the CAS stores. Precedence: an explicit file, then the environment value,
 * then `<dataDir>/master.key`, generated at first start.
 */
export function loadMasterKey(opts: { dataDir: string; file?: string | undefined; env?: string | undefined }): Buffer {
  if (opts.file) return readKeyFile(opts.file);
  if (opts.env) return decodeKey(opts.env, 'VEIL_MASTER_KEY');
  const path = join(opts.dataDir, 'master.key');
  if (!existsSync(path)) {
    refuseLostKey(opts.dataDir, path);
    createKeyFile(opts.dataDir, path);
  }
  return readKeyFile(path);
}

/**
 * A new key can only be right for an empty data directory: a database already there was sealed with a key
 * that is not at hand, and writing a fresh one would only hide that (and stand in the way of the real one).
 */
function refuseLostKey(dataDir: string, path: string): void {
  const existing = DATABASE_FILES.filter((f) => existsSync(join(dataDir, f)));
  if (existing.length === 0) return;
  const what = `${path} is missing, but ${dataDir} holds a CAS database (${existing.join(', ')}) sealed with it`;
  throw new StoreError('STORE_MASTER_KEY', what, {
    hint:
      'restore master.key (mode 0600) from your backup, or pass the key with --master-key-file or ' +
      'VEIL_MASTER_KEY; nothing was written',
  });
}

function createKeyFile(dataDir: string, path: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Written 0600 under a temporary name and renamed, so the key is never readable by others, even briefly.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function readKeyFile(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new StoreError('STORE_MASTER_KEY', `cannot read the master key file ${path}`, {
      hint: 'check the path',
      cause: err,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new StoreError('STORE_MASTER_KEY', `the master key file ${path} is readable by other users`, {
      hint: `run 'chmod 600 ${path}'`,
    });
  }
  return decodeKey(readFileSync(path, 'utf8'), path);
}

function decodeKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new StoreError('STORE_MASTER_KEY', `the master key from ${source} is not 32 bytes (hex or base64)`, {
      hint: 'generate one with: openssl rand -hex 32',
    });
  }
  return key;
}
