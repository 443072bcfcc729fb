import { after, describe, it } from 'node:test';
import { sqliteKit } from './backup-kit.js';
import { backupScenario } from './backup-scenario.js';
import { tempDir } from './harness.js';

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
