import { AttestationError } from '../errors.js';

/**
 * Cuts the exact text of a top-level member's value out of a JSON document, without re-serialising: Intel
 * signs the bytes of `tcbInfo` / `enclaveIdentity` as served. A small scanner that only finds value extents;
 * the document is also checked with JSON.parse by the caller.
 */
export function rawMember(text: string, name: string): string | undefined {
  let i = skipWs(text, 0);
  if (text[i] !== '{') return undefined;
  i = skipWs(text, i + 1);
  if (text[i] === '}') return undefined;
  for (;;) {
    if (text[i] !== '"') throw bad(i);
    const keyEnd = endOfString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWs(text, keyEnd);
    if (text[i] !== ':') throw bad(i);
    const start = skipWs(text, i + 1);
    const end = endOfValue(text, start);
    if (key === name) return text.slice(start, end);
    i = skipWs(text, end);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === '}') return undefined;
    throw bad(i);
  }
}

function bad(at: number): AttestationError {
  return new AttestationError('ATTESTATION_COLLATERAL', `the JSON document does not parse at offset ${at}`, {
    check: 'collateral',
  });
}

function skipWs(t: string, from: number): number {
  let i = from;
  while (i < t.length && (t[i] === ' ' || t[i] === '\n' || t[i] === '\r' || t[i] === '\t')) i++;
  return i;
}

function endOfString(t: string, i: number): number {
  for (let j = i + 1; j < t.length; j++) {
    if (t[j] === '\\') j++;
    else if (t[j] === '"') return j + 1;
  }
  throw bad(i);
}

function endOfValue(t: string, i: number): number {
  const c = t[i];
  if (c === '"') return endOfString(t, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < t.length; j++) {
      const d = t[j];
      if (d === '"') j = endOfString(t, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    throw bad(i);
  }
  let j = i;
  while (j < t.length && /[-+0-9.eEa-z]/.test(t[j]!)) j++;
  if (j === i) throw bad(i);
  return j;
}
