/**
 * `npm run bench:cas`: how fast the CAS creates sessions and issues certificates on one core, printed beside
 * `openssl speed ecdsap256` measured in the same run (a certificate costs at least one ECDSA signature, and a
 * leaf also a key generation, so OpenSSL's sign rate bounds what we can reach).
 */
import { memoryAuditLog } from '../cas/audit-testing.js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { identityFromPem } from '../cas/identity-of.js';
import { writeSession, type CasContext } from '../cas/sessions.js';
import { loadMasterKey, openSqliteStore } from '../cas/store/index.js';
import { benchCertificates } from '../secrets/bench-certs.js';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function policy(which: 'flask' | 'redis', vars: Record<string, string>): string {
  const text = readFileSync(join(ROOT, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`), 'utf8');
  return text.replace(/(?<!\$)\$([A-Z_][A-Z0-9_]*)/g, (m, name: string) => vars[name] ?? m);
}

function client() {
  const key = generatePrivateKey('P-256');
  const cert = issueCertificate({
    subjectKey: key,
    commonName: 'bench',
    isCa: false,
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 864e5),
  });
  return identityFromPem(pemEncode('CERTIFICATE', cert));
}

/** Sessions/s through the CAS's session layer: parse, validate, access control, secrets, hash, encrypted store. */
async function benchSessions(): Promise<{ perSecond: number; count: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-'));
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  const ctx: CasContext = { store, now: () => new Date(), audit: memoryAuditLog() };
  const me = client();
  const fixed = {
    MRENCLAVE: randomBytes(32).toString('hex'),
    SCONE_FSPF_KEY: randomBytes(32).toString('hex'),
    SCONE_FSPF_TAG: randomBytes(16).toString('hex'),
  };
  let count = 0;
  const end = Date.now() + SECONDS * 1000;
  const started = process.hrtime.bigint();
  while (Date.now() < end) {
    const vars = { ...fixed, FLASK_SESSION: `flask-${count}`, REDIS_SESSION: 'redis-shared' };
    if (count === 0) await writeSession(ctx, policy('redis', vars), me);
    await writeSession(ctx, policy('flask', vars), me);
    count++;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSecond: count / seconds, count };
}

function opensslSpeed(): number | undefined {
  try {
    const out = execFileSync('openssl', ['speed', '-seconds', String(SECONDS), 'ecdsap256'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const line = out.split('\n').find((l) => /256 bits ecdsa \(nistp256\)/.test(l));
    const fields = line?.trim().split(/\s+/) ?? [];
    return Number(fields[fields.length - 2]);
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const sessions = await benchSessions();
  const certs = benchCertificates(SECONDS);
  const sign = opensslSpeed();
  console.log(`veil CAS benchmark (one core, ${SECONDS} s each, node ${process.version})`);
  console.log(
    `  sessions created/s (seed Flask policy, 2 keys + CA + leaf each): ${fmt(sessions.perSecond)}   target ≥ 1,000`,
  );
  console.log(
    `  x509 leaf certificates issued/s (fresh P-256 key + signature):  ${fmt(certs.perSecond)}   target ≥ 5,000`,
  );
  console.log(`  bound: openssl speed ecdsap256 signatures/s:                    ${sign ? fmt(sign) : 'unavailable'}`);
}

await main();
