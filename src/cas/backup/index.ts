/**
 * Backups of the CAS store: one consistent dump (Store.dump), encrypted and authenticated under a key derived
 * from the master key, restored into an empty store (Store.load). The format is in format.ts.
 */
export { BackupError, type BackupErrorCode } from './errors.js';
export { CHUNK_BYTES, MAX_RECORD_BYTES } from './format.js';
export { decryptBackup } from './read.js';
export { encryptBackup, type BackupCounts } from './write.js';
export {
  readBackupFile,
  restoreBackupFile,
  verifyBackupFile,
  writeBackupFile,
  type Restored,
  type Written,
} from './file.js';
