import { z } from 'zod';

/** `n` hex digits, either case (measurements and keys are compared in lower case where they are used). */
export const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${n}}$`), `must be ${n} hex digits`);
export const hex64 = hex(64);
