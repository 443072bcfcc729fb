import { z } from 'zod';
import { sessionSchema } from './schema.js';

/** The JSON Schema editors use to complete and check sessions, generated from the validator's own schema. */
export function sessionJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(sessionSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://veil.invalid/schemas/session.schema.json',
    title: 'Veil / SCONE CAS session (session language v0.3)',
  };
}
