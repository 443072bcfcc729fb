import type { FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { describeIssues, issuesOf } from '../contract/index.js';
import { CasError } from './errors.js';

/**
 * Fastify ↔ the wire contract (`src/contract/`): request parts are validated by their zod schemas before any
 * handler runs, and answers are serialized from the same schemas turned into JSON Schema.
 */

const PART_NAMES: Record<string, string> = {
  body: 'body',
  querystring: 'querystring',
  params: 'path',
  headers: 'headers',
};

/** Runs zod for every request part with a schema; a failure is CAS_BAD_REQUEST naming the field path. */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const part = PART_NAMES[httpPart ?? ''] ?? String(httpPart);
  return (data: unknown) => {
    const parsed = schema.safeParse(data);
    if (parsed.success) return { value: parsed.data };
    // The router calls a wildcard path part `*`; the client wrote a path.
    const issues = issuesOf(parsed.error, part, jsonView(data)).map((i) => ({
      ...i,
      path: i.path.replace(/^path\.\*$/, 'path'),
    }));
    const message = `invalid request: ${describeIssues(issues)}`;
    return { error: new CasError('CAS_BAD_REQUEST', message, { hint: HINTS[part], issues }) };
  };
};

/** One request part checked against a schema in a handler (where the schema depends on a header). */
export function parsePart<T extends z.ZodType>(schema: T, data: unknown, httpPart: string): z.output<T> {
  const result = zodValidatorCompiler({ schema, httpPart, method: '', url: '' })(data) as {
    value?: z.output<T>;
    error?: Error;
  };
  if (result.error) throw result.error;
  return result.value as z.output<T>;
}

/** Bodies arrive as text: their issues are read against the JSON they hold (a missing field vs a wrong one). */
function jsonView(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

const HINTS: Record<string, string> = {
  body:
    'see the API in the README (POST /v1/attest takes JSON {config_id, nonce, evidence}; POST /v1/sessions the ' +
    'session YAML, or with content-type application/json {session, signatures: [{signer, signature}]})',
  querystring: 'give each query field once, only the ones the route takes (GET /v1/sessions/<name>?hash=<64 hex>)',
  path: 'see the API in the README: /v1/sessions/<session name>, /v1/values/session=<name>[,secret=<name>]',
  headers: 'send standard HTTP headers',
};

/** A body that is JSON text (every body arrives as a string) and then must match `schema`. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return z
    .string({ error: 'must be JSON' })
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

/** A response schema for fastify's serializer: only the contract's fields are ever written out. */
export function answer(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'output', unrepresentable: 'throw' });
  return json as Record<string, unknown>;
}
