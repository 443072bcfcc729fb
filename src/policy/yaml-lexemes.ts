import { CST, Lexer } from 'yaml';

/**
 * The lexer's markers that are not text of the source: a document's start, a scalar's start (what follows it is
 * a value, even when it starts with `#`, as a block scalar's line may) and the end of a flow collection in error.
 */
const MARKERS = new Set(['\u0002', '\u001f', '\u0018']);

export interface Lexeme {
  /** The source text of the token. */
  source: string;
  offset: number;
  /** CST.tokenType of the token, or 'scalar-value' for the text that follows a scalar marker. */
  type: string;
}

/** The YAML library's tokens with their offsets in the text (their sources, joined, are the text again). */
export function* lexemes(text: string): Generator<Lexeme> {
  let offset = 0;
  let afterScalarMarker = false;
  for (const source of new Lexer().lex(text)) {
    if (MARKERS.has(source)) {
      afterScalarMarker = source === CST.SCALAR;
      continue;
    }
    yield { source, offset, type: afterScalarMarker ? 'scalar-value' : (CST.tokenType(source) ?? 'unknown') };
    afterScalarMarker = false;
    offset += source.length;
  }
}
