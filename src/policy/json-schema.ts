import { z } from 'zod';
import { writtenSessionSchema } from './schema.js';

/**
 * The JSON Schema editors use to complete and check sessions, generated from the validator's own schema of the
 * session as written (config-fragment placeholders where SCONE allows them).
 */
export function sessionJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(writtenSessionSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return {
    ...schema,
    $id: 'https://veil.invalid/schemas/session.schema.json',
    title: 'Veil / SCONE CAS session (session language v0.3)',
  };
}
