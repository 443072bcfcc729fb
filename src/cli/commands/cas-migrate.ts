import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadMasterKey, openPostgresStore, openSqliteStore, StoreError } from '../../cas/store/index.js';
import { displayStoreUrl, parseStoreUrl } from '../../cas/store/postgres-errors.js';
import { usage } from '../errors.js';
import { defineCommand } from '../spec.js';
import { warnPasswordInArgs } from '../store-url.js';
import { storeFlags } from '../serve-flags.js';

/**
 * `veil cas migrate`: a SQLite data directory into an empty PostgreSQL database, through the store's dump and
 * load (every version, head and blob; hashes unchanged). One master key for both: the data directory's, or
 * the one given as for `veil cas serve`; the replicas on PostgreSQL are then started with that same key.
 */
export const migrate = defineCommand(
  {
    name: 'cas migrate',
    usage: ['--from DIR --to postgres://USER@HOST:PORT/DB [--master-key-file F]'],
    summary: 'moves a SQLite CAS store (a --data directory) into an empty PostgreSQL database',
    options: {
      from: { type: 'string', value: 'DIR', description: 'the data directory of the SQLite store' },
      to: { type: 'string', value: 'URL', description: 'an empty database (password in it or PGPASSWORD)' },
      'master-key-file': {
        type: 'string',
        value: 'FILE',
        description: "the store's master key (or VEIL_MASTER_KEY; default DIR/master.key)",
      },
    },
    notes: [
      'the target must be empty (STORE_NOT_EMPTY otherwise; nothing is changed): migrate before any CAS serves it',
    ],
  },
  async ({ values }, io) => {
    if (!values.from) throw usage('--from DIR is required', 'the --data directory of the SQLite CAS store');
    if (!values.to) throw usage('--to URL is required', 'an empty PostgreSQL database: postgres://USER@HOST:PORT/DB');
    const { store: url, storePassword: password } = storeFlags(values.to, io.env);
    warnPasswordInArgs(values.to, io);
    if (!existsSync(join(values.from, 'cas.db')))
      throw new StoreError('STORE_OPEN', `${values.from} holds no CAS database (cas.db)`, {
        hint: "give the SQLite CAS's --data directory (default $VEIL_HOME/cas)",
      });
    const masterKey = loadMasterKey({
      dataDir: values.from,
      file: values['master-key-file'],
      env: io.env['VEIL_MASTER_KEY'],
    });
    const source = openSqliteStore({ dataDir: values.from, masterKey });
    try {
      const target = await openPostgresStore({ url: url!, password, masterKey });
      try {
        const counts = await target.load(source.dump());
        const where = displayStoreUrl(parseStoreUrl(url!));
        io.out(
          `migrated ${counts.versions} versions, ${counts.heads} sessions and ${counts.blobs} blobs ` +
            `from ${values.from} to ${where}\n`,
        );
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
    return 0;
  },
);
