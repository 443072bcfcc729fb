import { VeilError, type ErrorCatalogue } from '../../errors.js';

export type BackupErrorCode =
  | 'BACKUP_FORMAT'
  | 'BACKUP_MASTER_KEY'
  | 'BACKUP_TAMPERED'
  | 'BACKUP_TRUNCATED'
  | 'BACKUP_TRAILING_DATA'
  | 'BACKUP_INVALID'
  | 'BACKUP_IO';

export const BACKUP_CATALOGUE: ErrorCatalogue<BackupErrorCode> = {
  BACKUP_FORMAT: { summary: 'the file is not a Veil CAS backup, or one of a format version this Veil cannot read' },
  BACKUP_MASTER_KEY: {
    summary: 'the backup was made under another master key (or its key identifier was modified)',
    hint: 'pass the master key of the CAS the backup was taken from with --master-key-file or VEIL_MASTER_KEY',
  },
  BACKUP_TAMPERED: {
    summary: 'a part of the backup failed authentication: modified, reordered, dropped or duplicated',
    hint: 'the file was changed after it was written; restore from another copy of the backup',
  },
  BACKUP_TRUNCATED: {
    summary: 'the backup ends before its final chunk (cut short while copying or writing)',
    hint: 'restore from a complete copy of the backup',
  },
  BACKUP_TRAILING_DATA: {
    summary: 'bytes follow the final chunk of the backup',
    hint: 'the file was appended to after it was written; restore from another copy of the backup',
  },
  BACKUP_INVALID: {
    summary:
      'the backup authenticates but its content is inconsistent (counts, digest, records), or an item is too large',
  },
  BACKUP_IO: { summary: 'the backup file cannot be read or written' },
};

/** Errors of CAS backups. Messages name files and positions, never the content of the backup. */
export class BackupError extends VeilError<BackupErrorCode> {}
