import { existsSync } from 'node:fs';
import type { AuditEvent } from '../../audit/types.js';
import type { Store } from '../../cas/store/index.js';
import { join } from 'node:path';
import { loadMasterKey } from '../../cas/store/master-key.js';
import { describeStore, openStore, requireExisting, type StoreLocation } from '../../cas/store/open.js';
import { StoreError } from '../../cas/store/errors.js';
import { usage } from '../errors.js';
import type { Io } from '../io.js';
import { defineCommand } from '../spec.js';
import { warnPasswordInArgs } from '../store-url.js';

const STORE_OPTIONS = {
  data: { type: 'string', value: 'DIR', description: "the CAS's SQLite data directory" },
  store: { type: 'string', value: 'URL', description: "the CAS's database (instead of --data)" },
  'master-key-file': {
    type: 'string',
    value: 'FILE',
    description: "the store's master key (or VEIL_MASTER_KEY; with --data, DIR/master.key by default)",
  },
} as const;

interface StoreFlags {
  data?: string | undefined;
  store?: string | undefined;
  'master-key-file'?: string | undefined;
}

/** `veil cas backup`: a consistent snapshot of a running CAS, encrypted under its master key. */
export const backup = defineCommand(
  {
    name: 'cas backup',
    usage: ['(--data DIR | --store URL) [--master-key-file F] --out FILE'],
    summary: 'writes an encrypted, authenticated snapshot of the CAS store (while the CAS runs) to FILE (0600)',
    options: {
      ...STORE_OPTIONS,
      out: { type: 'string', value: 'FILE', description: 'the backup file (written atomically, mode 0600)' },
    },
    notes: ['The backup is useless without the master key, and restoring it needs that key: keep the key apart.'],
  },
  async ({ values }, io) => {
    if (!values.out) throw usage('--out is required', 'veil cas backup --data DIR --out cas.vbk');
    const location = locationOf(values);
    warnPasswordInArgs(values.store, io);
    requireExisting(location);
    const masterKey = storeMasterKey(location, values, io);
    const { writeBackupFile } = await import('../../cas/backup/index.js');
    const store = await openStore({ location, masterKey, existing: true, password: io.env['PGPASSWORD'] });
    try {
      const written = await writeBackupFile(store, masterKey, values.out);
      const entry = await recordBackup(store, { type: 'backup.made', ...countsOf(written) });
      io.out(
        `backup of ${where(location)} written to ${values.out}: ${written.versions} versions, ${written.heads} ` +
          `sessions (heads), ${written.blobs} blobs, ${written.audits} audit entries, ${written.bytes} bytes; ` +
          `recorded as audit entry ${entry}\n`,
      );
    } finally {
      await store.close();
    }
    return 0;
  },
);

/** `veil cas restore`: a backup into an empty store, all or nothing, after the whole file was verified. */
export const restore = defineCommand(
  {
    name: 'cas restore',
    usage: ['--in FILE (--data DIR | --store URL) [--master-key-file F]'],
    summary: 'restores a backup into an empty store; a modified, truncated or foreign backup writes nothing',
    options: {
      in: { type: 'string', value: 'FILE', description: "a file written by 'veil cas backup'" },
      ...STORE_OPTIONS,
    },
    notes: ['Start the CAS on the restored store with the same master key (--master-key-file or VEIL_MASTER_KEY).'],
  },
  async ({ values }, io) => {
    if (!values.in) throw usage('--in is required', 'veil cas restore --in cas.vbk --data NEW_DIR --master-key-file F');
    const location = locationOf(values);
    warnPasswordInArgs(values.store, io);
    const masterKey = storeMasterKey(location, values, io);
    const { restoreBackupFile } = await import('../../cas/backup/index.js');
    const open = () => openStore({ location, masterKey, password: io.env['PGPASSWORD'] });
    const counts = await restoreBackupFile(values.in, masterKey, open);
    const store = await open();
    let entry: number;
    try {
      entry = await recordBackup(store, { type: 'backup.restored', ...countsOf(counts) });
    } finally {
      await store.close();
    }
    io.out(
      `restored ${values.in} into ${where(location)}: ${counts.versions} versions, ${counts.heads} sessions ` +
        `(heads), ${counts.blobs} blobs, ${counts.audits} audit entries; recorded as audit entry ${entry}\n`,
    );
    return 0;
  },
);

const countsOf = (c: { versions: number; heads: number; blobs: number; header: string }) => ({
  versions: c.versions,
  heads: c.heads,
  blobs: c.blobs,
  backup: c.header,
});

/**
 * The store's own audit log records the backup or restore (this command holds the master key and opens the store
 * directly; a running CAS appends to the same chain, under the same lock). A restore's entry follows the restored
 * chain, so the log tells where the restored history ends and the new one begins.
 */
async function recordBackup(store: Store, event: AuditEvent): Promise<number> {
  const { openAuditLog } = await import('../../cas/audit-log.js');
  const log = await openAuditLog(store, () => new Date());
  try {
    return (await log.record(event)).seq;
  } finally {
    await log.close();
  }
}

function locationOf(values: StoreFlags): StoreLocation {
  if (values.data !== undefined && values.store !== undefined)
    throw usage('--data and --store are exclusive', 'name the store once: a data directory or a database URL');
  if (values.data !== undefined) return { data: values.data };
  if (values.store !== undefined) return { store: values.store };
  throw usage('--data DIR or --store URL is required', 'name the store of the CAS');
}

function where(location: StoreLocation): string {
  return 'data' in location ? location.data : describeStore(location.store);
}

/**
 * The key comes from --master-key-file, VEIL_MASTER_KEY, or DIR/master.key — never made anew here: a fresh
 * key could read no backup, and a store sealed with one would hold a restore no CAS of the user can open.
 */
function storeMasterKey(location: StoreLocation, values: StoreFlags, io: Io): Buffer {
  const file = values['master-key-file'];
  const env = io.env['VEIL_MASTER_KEY'];
  if (file || env) return loadMasterKey({ dataDir: '', file, env });
  if ('store' in location)
    throw usage('--store needs the master key', 'pass --master-key-file FILE or set VEIL_MASTER_KEY');
  const path = join(location.data, 'master.key');
  if (!existsSync(path)) {
    throw new StoreError('STORE_MASTER_KEY', `${path} does not exist and no master key was given`, {
      hint: 'pass the key of the CAS the backup belongs to with --master-key-file or VEIL_MASTER_KEY',
    });
  }
  return loadMasterKey({ dataDir: location.data });
}
