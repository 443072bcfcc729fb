/**
 * A real process for the audit e2e tests: opens the store named by argv (`sqlite DIR` or `postgres URL`; the master
 * key in VEIL_MASTER_KEY, the database password in PGPASSWORD — never in argv), records events with IN_FLIGHT
 * outstanding at once, and prints "SEQ HASH" for each acknowledged entry, up to COUNT (0: until killed).
 */
import { openAuditLog } from '../cas/audit-log.js';
import { openStore } from '../cas/store/open.js';

const IN_FLIGHT = 16;
const [kind, where, countArg, tag] = process.argv.slice(2);
const count = Number(countArg ?? '0');
const masterKey = Buffer.from(process.env['VEIL_MASTER_KEY'] ?? '', 'hex');
const location = kind === 'sqlite' ? { data: where! } : { store: where! };
const store = await openStore({ location, masterKey, password: process.env['PGPASSWORD'] });
const log = await openAuditLog(store, () => new Date());
let issued = 0;

async function worker(): Promise<void> {
  while (count === 0 || issued < count) {
    const i = issued++;
    const entry = await log.record({ type: 'value.read', session: `ns/${tag}`, secret: `s${i}`, actor: null });
    process.stdout.write(`${entry.seq} ${entry.hash}\n`);
  }
}

await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
await log.close();
await store.close();
