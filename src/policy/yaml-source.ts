import { Composer, Lexer, LineCounter, Parser, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import jsYaml from 'js-yaml';
import { lexemes } from './yaml-lexemes.js';
import type { PathSegment } from '../issues.js';
import { PolicyError } from './errors.js';
import { SESSION_LIMITS } from './limits.js';

export const MAX_ALIASES = 100;
export const MAX_DEPTH = 64;

export type { PathSegment };

/** A parsed YAML text that can say where each field path sits in it. */
export interface Source {
  value: unknown;
  locate(path: PathSegment[], atKey?: boolean): { line: number; column: number } | undefined;
}

/**
 * Sessions are parsed with js-yaml: it is 7× faster than `yaml` (95 µs against 680 µs for the seed's Flask
 * policy; 60 ms against 1.5 s for 1 MiB), and parsing was the CAS's bottleneck. `yaml`, whose source positions
 * make good errors, parses a text again only when there is something to locate, and handles anchors and aliases,
 * because it bounds their expansion — both only up to `fullParseBytes`, since it is slow.
 *
 * js-yaml reads every text first, also those with anchors (it shares aliased nodes, so expansion costs it
 * nothing): it stops at a depth of MAX_DEPTH + 16 within microseconds, where `yaml` spent seconds on 1 MiB of
 * `[` (and ran out of memory on 1 MiB of `- `), so no text too deep for js-yaml ever reaches `yaml`.
 */
export function parseYaml(text: string, file: string): Source {
  const fast = fastParse(text, file);
  const small = text.length <= SESSION_LIMITS.fullParseBytes;
  if ('error' in fast) {
    if (small) return fullParse(text, file); // the full parser reports it, or accepts what js-yaml does not
    const at = markOf(fast.error);
    if (at.line === undefined)
      throw new PolicyError('POLICY_YAML_SYNTAX', [{ path: '', message: fast.error.reason }], file);
    throw syntaxError(text, fast.error.reason, { line: at.line, column: at.column ?? 1 }, file);
  }
  if (ALIAS_OR_ANCHOR.test(text)) {
    if (small) return fullParse(text, file);
    const message = `YAML anchors and aliases are accepted in sessions up to ${SESSION_LIMITS.fullParseBytes} bytes`;
    throw new PolicyError('POLICY_TOO_COMPLEX', [{ path: '', message }], file);
  }
  checkValueDepth(fast.value, file);
  let full: Source | undefined;
  const locate = (path: PathSegment[], atKey?: boolean) => {
    if (!small) return undefined;
    full ??= fullParse(text, file);
    return full.locate(path, atKey);
  };
  return { value: fast.value, locate };
}

const ALIAS_OR_ANCHOR = /(^|[\s[{,:-])[&*][^\s,[\]{}]/m;

/** js-yaml counts every node it opens, scalars too: a margin over MAX_DEPTH, whose exact check comes after. */
const JS_YAML_MAX_DEPTH = MAX_DEPTH + 16;

function fastParse(text: string, file: string): { value: unknown } | { error: jsYaml.YAMLException } {
  try {
    const options = { schema: jsYaml.CORE_SCHEMA, maxDepth: JS_YAML_MAX_DEPTH } as jsYaml.LoadOptions;
    return { value: jsYaml.load(text, options) };
  } catch (err) {
    if (!(err instanceof jsYaml.YAMLException)) throw err;
    if (err.reason.startsWith('nesting exceeded maxDepth')) throw tooDeep(file, markOf(err));
    return { error: err };
  }
}

function markOf(err: jsYaml.YAMLException): { line?: number; column?: number } {
  return err.mark ? { line: err.mark.line + 1, column: err.mark.column + 1 } : {};
}

function tooDeep(file: string, pos: { line?: number; column?: number }): PolicyError {
  const issue = { path: '', message: `nesting deeper than ${MAX_DEPTH} levels`, ...pos };
  return new PolicyError('POLICY_TOO_COMPLEX', [issue], file);
}

function checkValueDepth(value: unknown, file: string): void {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) throw tooDeep(file, {});
    if (node !== null && typeof node === 'object')
      for (const child of Object.values(node)) stack.push({ node: child, depth: depth + 1 });
  }
}

function fullParse(text: string, file: string): Source {
  const lineCounter = new LineCounter();
  const doc = parseOne(text, lineCounter, file);
  checkDepth(doc, lineCounter, file);
  checkUniqueKeys(doc, lineCounter, file);
  const value = toValue(doc, file);
  const locate = (path: PathSegment[], atKey = false) => {
    const offset = offsetOf(doc, path, atKey);
    return offset === undefined
      ? undefined
      : { line: lineCounter.linePos(offset).line, column: lineCounter.linePos(offset).col };
  };
  return { value, locate };
}

/** The parser's stack holds the document, the open collections and a scalar: a margin over MAX_DEPTH. */
const PARSER_MAX_STACK = MAX_DEPTH + 8;

/**
 * `parseDocument`, with the parser fed one token at a time so that nesting is refused as it opens (its cost per
 * token grows with the depth). Keys are checked for uniqueness afterwards, in linear time: `uniqueKeys`
 * compares every key of a map with every other (8 s for a 256 KiB map).
 */
function parseOne(text: string, lineCounter: LineCounter, file: string): Document {
  const parser = new Parser(lineCounter.addNewLine);
  function* tokens() {
    lineCounter.addNewLine(0);
    for (const lexeme of new Lexer().lex(text)) {
      yield* parser.next(lexeme);
      if (parser.stack.length > PARSER_MAX_STACK) throw tooDeep(file, position(lineCounter, parser.offset));
    }
    yield* parser.end();
  }
  const docs = [...new Composer({ uniqueKeys: false }).compose(tokens(), true, text.length)];
  const doc = docs[0]!;
  const first = rootCause(doc.errors);
  if (first) throw syntaxError(text, plainWords(first), position(lineCounter, startOf(text, first)), file);
  if (docs.length > 1) {
    const at = position(lineCounter, docs[1]!.range[0]);
    throw syntaxError(text, 'a second YAML document starts here (---): a session is one document', at, file);
  }
  refuseUnknownTags(doc, text, lineCounter, file);
  return doc;
}

/**
 * SCONE's two tags, `secret_config.store_in: !cas | !akv {…}`: `!cas` reads as empty (the default, accepted),
 * `!akv` as its map, which the schema refuses by name (Azure Key Vault).
 */
const ACCEPTED_TAGS = new Set(['!cas', '!akv']);

/**
 * The parser only warns about a tag it cannot resolve and then drops it: `kind: !foo ascii` would read as
 * `ascii`. A tag says something about the value, so one Veil does not know is refused by name.
 */
function refuseUnknownTags(doc: Document, text: string, lineCounter: LineCounter, file: string): void {
  for (const warning of doc.warnings) {
    if (warning.code !== 'TAG_RESOLVE_FAILED') continue;
    const tag = /^![^\s,[\]{}]*/.exec(text.slice(warning.pos[0]))?.[0] ?? 'tag';
    if (ACCEPTED_TAGS.has(tag)) continue;
    const at = position(lineCounter, warning.pos[0]);
    const message = `the YAML tag ${tag} is not supported by Veil: sessions are plain YAML values (SCONE's store_in: !cas is the one tag read)`;
    throw new PolicyError('POLICY_UNSUPPORTED', [{ path: '', message, ...at }], file);
  }
}

/**
 * Only the first syntax error is reported: the parser's later ones follow from it (one tab indent made 13), and
 * its position with the line's text says where to look.
 */
function syntaxError(text: string, message: string, at: { line: number; column: number }, file: string): PolicyError {
  const issue = { path: '', message: `${message} — line ${at.line}: ${lineText(text, at.line)}`, ...at };
  return new PolicyError('POLICY_YAML_SYNTAX', [issue], file);
}

/** The line as written (tabs shown as \t), cut at 100 characters. */
function lineText(text: string, line: number): string {
  const whole = (text.split('\n')[line - 1] ?? '').replace(/\r$/, '');
  return JSON.stringify(whole.length > 100 ? `${whole.slice(0, 100)}…` : whole);
}

/**
 * Errors the lexer finds where they are (a tab, an unclosed quote, a bad escape) are the cause of the parser's
 * others, which may come earlier in the text (a tab indenting the first entry of `local:` makes `local:` a bad key):
 * the first of those, or else the first error.
 */
const LEXICAL = new Set(['TAB_AS_INDENT', 'MISSING_CHAR', 'BAD_DQ_ESCAPE']);

function rootCause<E extends { code: string; pos: [number, number] }>(errors: readonly E[]): E | undefined {
  const sorted = [...errors].sort((a, b) => a.pos[0] - b.pos[0]);
  return sorted.find((e) => LEXICAL.has(e.code)) ?? sorted[0];
}

/** An unclosed quote is reported where the quoted string opens, not where the parser gave up on it. */
function startOf(text: string, err: { code: string; message: string; pos: [number, number] }): number {
  if (err.code !== 'MISSING_CHAR' || !/quote/.test(err.message)) return err.pos[0];
  for (const t of lexemes(text)) {
    const quoted = t.type === 'double-quoted-scalar' || t.type === 'single-quoted-scalar';
    if (quoted && t.offset <= err.pos[0] && err.pos[0] <= t.offset + t.source.length) return t.offset;
    if (t.offset > err.pos[0]) break;
  }
  return err.pos[0];
}

/** The parser's errors most often met in hand-written files, said in plain words (the others as it says them). */
const PLAIN: Partial<Record<string, string>> = {
  TAB_AS_INDENT: 'a tab indents this line; YAML indents with spaces only (replace the tab by spaces)',
  MULTILINE_IMPLICIT_KEY:
    "a key runs over more than one line: most likely the ':' after a key is missing here (write key: value)",
  BLOCK_AS_IMPLICIT_KEY: "a list or map is used as a key: most likely a ':' is missing or misplaced here",
  BAD_INDENT: 'this line is indented differently from the other entries of its list or map: align it with them',
  BAD_DQ_ESCAPE: 'a \\ escape in this double-quoted string is not valid YAML (write \\\\ for a backslash)',
  DUPLICATE_KEY: 'this key appears twice in the same map',
};

function plainWords(err: { code: string; message: string }): string {
  const said = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  if (err.code === 'MISSING_CHAR' && /quote/.test(said))
    return 'a quoted string opens here and is not closed (its closing quote is missing)';
  const flow = /^Flow (sequence|mapping)/.exec(said)?.[1];
  if (err.code === 'BAD_INDENT' && flow) {
    const [open, close] = flow === 'sequence' ? ['[', ']'] : ['{', '}'];
    return `a ${open} opened before this line is not closed (its closing ${close} is missing, or the line is not indented under it)`;
  }
  return PLAIN[err.code] ?? said;
}

function position(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Refuses deep nesting before anything walks the tree recursively. */
function checkDepth(doc: Document, lineCounter: LineCounter, file: string): void {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: doc.contents, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > MAX_DEPTH) {
      const range = (node as Node).range;
      throw tooDeep(file, range ? position(lineCounter, range[0]) : {});
    }
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items) stack.push({ node: isPair(item) ? item.value : item, depth: depth + 1 });
    }
  }
}

/** Scalar keys of each map, compared by value through a Set (the depth is already bounded). */
function checkUniqueKeys(doc: Document, lineCounter: LineCounter, file: string): void {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isSeq(node)) stack.push(...node.items);
    if (!isMap(node)) continue;
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      if (isScalar(pair.key)) {
        if (seen.has(pair.key.value)) {
          const pos = pair.key.range ? position(lineCounter, pair.key.range[0]) : {};
          throw new PolicyError('POLICY_YAML_SYNTAX', [{ path: '', message: 'Map keys must be unique', ...pos }], file);
        }
        seen.add(pair.key.value);
      }
      stack.push(pair.value);
    }
  }
}

function toValue(doc: Document, file: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    throw new PolicyError(
      'POLICY_TOO_COMPLEX',
      [{ path: '', message: `YAML aliases expand too far (${(err as Error).message})` }],
      file,
    );
  }
}

function offsetOf(doc: Document, path: PathSegment[], atKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const segment of path) {
    keyNode = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return rangeStart(node);
      keyNode = pair.key;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment]) {
      node = node.items[segment];
    } else {
      return rangeStart(node);
    }
  }
  return rangeStart(atKey && keyNode ? keyNode : node);
}

function rangeStart(node: unknown): number | undefined {
  return (node as Node | undefined)?.range?.[0];
}
