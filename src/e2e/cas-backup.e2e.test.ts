import { after, before, describe, it } from 'node:test';
import { postgresKit, sqliteKit } from './backup-kit.js';
import { backupScenario } from './backup-scenario.js';
import { tempDir } from './harness.js';
import { startPostgres, type Postgres } from './postgres.js';

/** `veil cas backup` and `veil cas restore` with real processes; the body is store-agnostic (backup-scenario.ts). */
describe('CAS backup and restore (SQLite, veil cas serve under concurrent writes)', () => {
  const dir = tempDir('veil-backup-e2e-');
  after(() => dir.cleanup());
  const scenario = backupScenario(
    () => sqliteKit(dir.path),
    () => dir.path,
  );
  it('backs up a running CAS: every write acknowledged before the backup began is in it', scenario.underWrites);
  it('restores into a new store, on which a CAS serves the same hashes', scenario.restores);
  it('refuses a tampered and a truncated backup, leaving the target empty', scenario.refuses);
});

describe('CAS backup and restore (PostgreSQL, veil cas serve --store under concurrent writes)', () => {
  const dir = tempDir('veil-backup-pg-e2e-');
  let server: Postgres;
  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.stop();
    dir.cleanup();
  });
  const scenario = backupScenario(
    () => postgresKit(dir.path, server),
    () => dir.path,
  );
  it('backs up a running CAS: every write acknowledged before the backup began is in it', scenario.underWrites);
  it('restores into a new store, on which a CAS serves the same hashes', scenario.restores);
  it('refuses a tampered and a truncated backup, leaving the target empty', scenario.refuses);
});
