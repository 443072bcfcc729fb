/**
 * Splits a manifest's `command` string into argv the way a POSIX shell would for plain words and quotes
 * ('…', "…", backslash), without expansion ($$SCONE::x$$ placeholders stay whole): SCONE puts the string into the policy, and the runtime never
 * runs a shell. `{{VAR | default(...)}}` mesh variables stay whole too. Pipes, lists and redirections (`, |, ;, &, <, >) are refused rather than misread.
 */
export function splitCommand(command: string | string[]): string[] {
  if (Array.isArray(command)) return command;
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'" || c === '"') {
      const end = command.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated ${c} quote`);
      const quoted = command.slice(i + 1, end);
      word = (word ?? '') + (c === '"' ? quoted.replace(/\\(["\\])/g, '$1') : quoted);
      i = end;
    } else if (c === '{' && command[i + 1] === '{' && command.indexOf('}}', i) > 0) {
      const end = command.indexOf('}}', i) + 2; // a mesh variable stays whole, filters and all
      word = (word ?? '') + command.slice(i, end);
      i = end - 1;
    } else if (c === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i];
    } else if ('`|;&<>'.includes(c)) {
      throw new Error(`'${c}' would need a shell; the runtime starts the program directly (write an array, or quote it)`);
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
