import { PolicyError } from './errors.js';

const PLACEHOLDER_START = '$$SCONE::';

/**
 * Splits a `command` string into argv the way a POSIX shell would for plain words and quotes ('…', "…",
 * backslash), without expansion: the runtime never runs a shell. One splitter for the session language (§4.2:
 * the CAS's configuration), service manifests (`build.command`) and image commands (`sh -c "…"`).
 * `$$SCONE::x$$` placeholders and `{{VAR | default(...)}}` mesh variables stay whole, `|` and all. Pipes, lists
 * and redirections (`, |, ;, &, <, >) are refused rather than misread: a PolicyError (POLICY_SHAPE) whose one
 * issue says why, at `path`.
 */
export function splitCommand(command: string | string[], path = 'command'): string[] {
  if (Array.isArray(command)) return command;
  const problem = (message: string) => new PolicyError('POLICY_SHAPE', [{ path, message }], path);
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    const whole = wholeToken(command, i);
    if (whole !== undefined) {
      word = (word ?? '') + whole;
      i += whole.length - 1;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'" || c === '"') {
      const end = command.indexOf(c, i + 1);
      if (end < 0) throw problem(`unterminated ${c} quote`);
      const quoted = command.slice(i + 1, end);
      word = (word ?? '') + (c === '"' ? quoted.replace(/\\(["\\])/g, '$1') : quoted);
      i = end;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else if ('`|;&<>'.includes(c)) {
      throw problem(`'${c}' would need a shell; the runtime starts the program directly (write a list, or quote it)`);
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** A placeholder or a mesh variable starting at `i`, which is part of a word as it stands (filters and all). */
function wholeToken(command: string, i: number): string | undefined {
  if (command.startsWith(PLACEHOLDER_START, i)) {
    const end = command.indexOf('$$', i + PLACEHOLDER_START.length);
    return end < 0 ? undefined : command.slice(i, end + 2);
  }
  if (command.startsWith('{{', i)) {
    const end = command.indexOf('}}', i);
    return end < 0 ? undefined : command.slice(i, end + 2);
  }
  return undefined;
}

/** Why a command string cannot be split, for the schema; undefined when it can. */
export function commandProblem(command: string): string | undefined {
  try {
    splitCommand(command);
    return undefined;
  } catch (err) {
    if (err instanceof PolicyError) return err.issues[0]!.message;
    throw err;
  }
}
