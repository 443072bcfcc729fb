import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import type { CasContext } from './sessions.js';
import { memoryAuditLog } from './audit-testing.js';
import { loadMasterKey, openSqliteStore, type Store } from './store/index.js';

/**
 * For the CAS's unit tests: a store in a fresh temporary directory, closed and removed after the test file,
 * and the context the session operations take (the real clock).
 */
export function tempStore(prefix: string): { dir: string; store: Store; ctx: CasContext } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store, ctx: { store, now: () => new Date(), audit: memoryAuditLog() } };
}

/** A client identity as the CAS sees it: a fresh P-256 key in a certificate named `commonName`. */
export function clientIdentity(commonName: string): ClientIdentity {
  const subjectKey = generatePrivateKey();
  const notAfter = new Date(Date.now() + 864e5);
  const cert = issueCertificate({ subjectKey, commonName, isCa: false, notBefore: new Date(), notAfter });
  return identityFromPem(pemEncode('CERTIFICATE', cert));
}
