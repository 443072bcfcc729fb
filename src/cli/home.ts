import { createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { keyHash, publicKeySpki, selfSignedIdentity } from '../secrets/index.js';
import { CliError, usage } from './errors.js';

/**
 * The local client identity and the CASes it has attested, under $VEIL_HOME (default ~/.veil).
 * The identity is a P-256 key with a self-signed certificate, like SCONE's `~/.cas/config.json` identity:
 * the CAS knows a client by the key behind the certificate it presents.
 */
export interface LocalIdentity {
  certPem: string;
  keyPem: string;
  keyHash: string;
}

import type { PinnedCas } from '../runtime/cas-identity.js';

export type { PinnedCas };

interface Config {
  default?: string;
  cas: Record<string, PinnedCas>;
}

export function veilHome(env: NodeJS.ProcessEnv = process.env): string {
  return env['VEIL_HOME'] || join(homedir(), '.veil');
}

function ensureHome(home: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
}

/** Writes through a 0600 temporary file and a rename, so a key is never readable by others, even briefly. */
export function writePrivate(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function loadIdentity(home: string): LocalIdentity {
  const keyPath = join(home, 'identity.key');
  const certPath = join(home, 'identity.crt');
  if (!existsSync(keyPath) || !existsSync(certPath)) createIdentity(home, keyPath, certPath);
  const keyPem = readFileSync(keyPath, 'utf8');
  const certPem = readFileSync(certPath, 'utf8');
  return { keyPem, certPem, keyHash: keyHashOfPem(keyPem) };
}

/**
 * `--identity DIR` (scone's `--identity`): the identity in DIR or, without it, $VEIL_HOME's. One is never made in
 * DIR: a typo would silently make a new owner.
 */
export function chosenIdentity(dir: string | undefined, env: NodeJS.ProcessEnv): LocalIdentity {
  if (dir === undefined) return loadIdentity(veilHome(env));
  if (!existsSync(join(dir, 'identity.key')) || !existsSync(join(dir, 'identity.crt')))
    throw usage(
      `--identity ${dir} holds no identity.key and identity.crt`,
      'name a directory holding an identity, e.g. another $VEIL_HOME',
    );
  return loadIdentity(dir);
}

function createIdentity(home: string, keyPath: string, certPath: string): void {
  ensureHome(home);
  const identity = selfSignedIdentity({
    commonName: 'veil cli',
    endpoint: 'client',
    notBefore: new Date('2000-01-01T00:00:00Z'),
    notAfter: new Date('2100-01-01T00:00:00Z'),
  });
  writePrivate(keyPath, identity.keyPem);
  writeFileSync(certPath, identity.certPem, { mode: 0o644 });
}

function keyHashOfPem(keyPem: string): string {
  const der = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  return keyHash(publicKeySpki(der));
}

function configPath(home: string): string {
  return join(home, 'cas.json');
}

function readConfig(home: string): Config {
  const path = configPath(home);
  if (!existsSync(path)) return { cas: {} };
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Config;
  } catch (err) {
    throw new CliError('CLI_HOME', `${path} is not valid JSON`, {
      hint: 'fix or delete it, then attest the CAS again',
      cause: err,
    });
  }
}

export function pinCas(home: string, pin: PinnedCas): void {
  ensureHome(home);
  const config = readConfig(home);
  config.cas[pin.url] = pin;
  config.default = pin.url;
  writePrivate(configPath(home), JSON.stringify(config, null, 2) + '\n');
}

/** The pinned CAS for `url` (or the default one); refusing to talk to a CAS nobody attested. */
export function pinnedCas(home: string, url: string | undefined): PinnedCas {
  const config = readConfig(home);
  const key = url ? normalizeCasUrl(url) : config.default;
  const pin = key ? config.cas[key] : undefined;
  if (!pin) {
    throw new CliError('CLI_NOT_ATTESTED', key ? `CAS ${key} has not been attested` : 'no CAS has been attested yet', {
      hint: `run 'veil cas attest ${key ?? '<url>'} -c <fingerprint>' first (the fingerprint is printed by 'veil cas serve')`,
    });
  }
  return pin;
}

/** `host`, `host:port` or a URL → `https://host:port` (port 8081 by default, as SCONE's CAS). */
export function normalizeCasUrl(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `https://${address}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'https:')
    throw new CliError('CLI_USAGE', `CAS address ${address} is not https`, {
      hint: 'the CAS API is served over HTTPS only',
    });
  return `https://${url.hostname}:${url.port || '8081'}`;
}
