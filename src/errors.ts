/**
 * The base of every module's error class. Each module declares its own subclass with a closed
 * union of stable codes (see policy/errors.ts, secrets/errors.ts, ...), so callers can `switch (err.code)`.
 * Messages say what failed; `hint` says what to do about it. Neither ever carries a secret value.
 */
export class VeilError<C extends string = string> extends Error {
  readonly code: C;
  readonly hint: string | undefined;

  constructor(code: C, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** One line for a terminal: what failed, then what to do. */
  toLine(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

export function isVeilError(err: unknown): err is VeilError {
  return err instanceof VeilError;
}

/**
 * One code of a module's error catalogue: what it means, for docs/errors.md (generated from the catalogues), and
 * the hint its errors get when the place that throws gives none.
 */
export interface ErrorEntry {
  summary: string;
  hint?: string;
}

/** A module's catalogue: every code of its closed union, and nothing else (the compiler checks both ways). */
export type ErrorCatalogue<C extends string> = { readonly [K in C]: ErrorEntry };
