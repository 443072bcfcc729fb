import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { pemEncode } from './encodings.js';

/** Shared by the secrets tests: the real openssl binary and a temporary directory removed after the file's tests. */
export function scratch(): {
  file: (name: string, data: string | Buffer) => string;
  certFile: (name: string, der: Buffer) => string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'veil-secrets-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, data: string | Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return path;
  };
  return { file, certFile: (name, der) => file(name, pemEncode('CERTIFICATE', der)) };
}

/** openssl's stdout; a failing run throws with its stderr attached. */
export function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function opensslBytes(...args: string[]): Buffer {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}
