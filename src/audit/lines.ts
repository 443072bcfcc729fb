import { AuditError } from './errors.js';

/** README "Audit log", Limits: the longest line of an export a verifier reads (an entry is a few KiB at most). */
export const MAX_LINE_BYTES = 1024 * 1024;

export interface Line {
  text: string;
  /** 1-based. */
  number: number;
  /** False for a last line that the file does not end with a newline (cut short?). */
  terminated: boolean;
}

/**
 * The lines of a text or a stream, one at a time: memory holds one line and one chunk. Bytes that are not UTF-8,
 * and a byte order mark, are refused or kept, never replaced or dropped: other bytes must not read as the same text.
 */
export async function* linesOf(input: string | AsyncIterable<string | Buffer>): AsyncGenerator<Line> {
  const source = typeof input === 'string' ? [input] : input;
  let pending = '';
  let number = 0;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const decode = (chunk?: Buffer) => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw notUtf8(number + 1);
    }
  };
  for await (const chunk of source) {
    pending += typeof chunk === 'string' ? chunk : decode(chunk);
    let cut = pending.indexOf('\n');
    while (cut >= 0) {
      if (cut > MAX_LINE_BYTES) throw tooLong(number + 1);
      yield { text: pending.slice(0, cut), number: ++number, terminated: true };
      pending = pending.slice(cut + 1);
      cut = pending.indexOf('\n');
    }
    if (pending.length > MAX_LINE_BYTES) throw tooLong(number + 1);
  }
  pending += decode();
  if (pending.length > 0) yield { text: pending, number: ++number, terminated: false };
}

function notUtf8(line: number): AuditError {
  return new AuditError('AUDIT_FORMAT', `the export is not UTF-8 (at line ${line} or a line after it)`, { line });
}

function tooLong(line: number): AuditError {
  return new AuditError('AUDIT_FORMAT', `line ${line} of the export is longer than ${MAX_LINE_BYTES} bytes`, {
    line,
  });
}
