import { VeilError } from '../errors.js';

export type ShieldErrorCode = 'SHIELD_TAMPERED' | 'SHIELD_MISSING' | 'SHIELD_UNEXPECTED' | 'SHIELD_KEY' | 'SHIELD_IO';

/** Errors of the file-system shield: they name the file that failed, never a key. */
export class ShieldError extends VeilError<ShieldErrorCode> {}
