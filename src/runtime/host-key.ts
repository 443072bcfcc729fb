import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { hostId } from '../attestation/evidence.js';
import { RuntimeError } from './errors.js';

/**
 * The host key signs this machine's simulation evidence, so that a session can name the hosts it trusts
 * (`services[].platforms`: the key's platform ID, hex SHA-256 of its SPKI). An Ed25519 key made on first use
 * at `$VEIL_HOST_KEY`, or `$VEIL_HOME/host/host-key.pem` (VEIL_HOME defaulting to ~/.veil): the file 0600
 * and its directory 0700, both owned by this user — anything else is refused, since whoever can read the key
 * can sign evidence for this host.
 */
export interface HostKey {
  path: string;
  /** The platform ID (64 hex digits). */
  id: string;
  /** DER SubjectPublicKeyInfo of the public key. */
  spki: Buffer;
  sign(message: Buffer): Promise<Buffer>;
}

export const HOST_KEY_ENV = 'VEIL_HOST_KEY';
/** A PEM Ed25519 PKCS#8 key is 119 bytes; nothing larger is read. */
const MAX_KEY_FILE = 4096;

const generateEd25519 = promisify(generateKeyPair);
const signAsync = promisify(sign);

export function hostKeyPath(env: NodeJS.ProcessEnv): string {
  const override = env[HOST_KEY_ENV];
  if (override) return resolve(override);
  return join(env['VEIL_HOME'] || join(home(), '.veil'), 'host', 'host-key.pem');
}

function home(): string {
  try {
    return homedir();
  } catch (err) {
    // No HOME and no passwd entry (a bare container): say where the key could go instead of a system error.
    throw keyError('cannot find a home directory for the host key', `set ${HOST_KEY_ENV} (or VEIL_HOME)`, err);
  }
}

/** This host's key, made on first use. Two processes starting at once end up with the same key. */
export async function loadHostKey(path: string): Promise<HostKey> {
  await privateDirectory(dirname(path));
  const pem = (await readKeyFile(path)) ?? (await createKeyFile(path));
  return hostKeyOf(pem, path);
}

async function privateDirectory(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw keyError(
      `cannot make the host key directory ${dir}: ${(err as Error).message}`,
      `set ${HOST_KEY_ENV} to a key file in a directory this user owns (mode 0700)`,
      err,
    );
  }
  const st = await fs.stat(dir);
  checkOwnership(st, dir, 'directory', 0o700);
}

/** The key file's text, or undefined when there is none; never through a symbolic link. */
async function readKeyFile(path: string): Promise<string | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw keyError(
      `cannot open the host key ${path}: ${(err as Error).message}`,
      'it must be a regular file (not a symbolic link) readable by this user',
      err,
    );
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw keyError(`the host key ${path} is not a regular file`, 'delete it; veil run makes a new key');
    }
    checkOwnership(st, path, 'file', 0o600);
    if (st.size > MAX_KEY_FILE) {
      throw keyError(`the host key ${path} is larger than ${MAX_KEY_FILE} bytes`, 'it is not a host key: delete it');
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

type Kind = 'file' | 'directory';

function checkOwnership(st: { mode: number; uid: number }, path: string, what: Kind, want: number): void {
  const octal = (st.mode & 0o777).toString(8).padStart(4, '0');
  if ((st.mode & 0o077) !== 0) {
    throw keyError(
      `the host key ${what} ${path} is accessible by group or others (mode ${octal})`,
      `chmod ${want.toString(8)} ${path}` +
        (what === 'file'
          ? '; whoever read it can sign simulation evidence for this host: if in doubt, delete it and list the new id'
          : ''),
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw keyError(
      `the host key ${what} ${path} belongs to uid ${st.uid}, not to this user (uid ${uid})`,
      `run as its owner, or set ${HOST_KEY_ENV} to a key of this user`,
    );
  }
}

/**
 * Race-safe first use: the key is written in full to a fresh 0600 temporary file (O_EXCL), then linked to its
 * name, which fails if another process got there first; either way the file at the name is then read back,
 * so every process uses the one key that won.
 */
async function createKeyFile(path: string): Promise<string> {
  const { privateKey } = await generateEd25519('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await fs.open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.link(tmp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } catch (err) {
    throw keyError(
      `cannot write the host key ${path}: ${(err as Error).message}`,
      `set ${HOST_KEY_ENV} to a writable place (a directory of this user, mode 0700)`,
      err,
    );
  } finally {
    await fs.rm(tmp, { force: true });
  }
  const written = await readKeyFile(path);
  if (written === undefined) throw keyError(`the host key ${path} vanished while it was made`, 'start again');
  return written;
}

function hostKeyOf(pem: string, path: string): HostKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw keyError(
      `the host key ${path} is not a PEM private key`,
      'delete it; veil run makes a new key (then list the new id)',
      err,
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw keyError(
      `the host key ${path} is ${key.asymmetricKeyType ?? 'an unknown key'}, not Ed25519`,
      'delete it; veil run makes a new Ed25519 key (then list the new id)',
    );
  }
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return { path, id: hostId(spki), spki, sign: (message) => signAsync(null, message, key) };
}

function keyError(message: string, hint: string, cause?: unknown): RuntimeError {
  return new RuntimeError('RUNTIME_HOST_KEY', message, { hint, ...(cause === undefined ? {} : { cause }) });
}
