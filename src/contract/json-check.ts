import type { WireIssue } from './issues.js';

/**
 * The JSON Schema keywords that zod's `toJSONSchema` writes for the answers `veil run` reads (a test checks
 * that the generated schemas use no others, and that this check and zod agree on random answers).
 *
 * Why not zod itself in `veil run`: everything the runtime executes is measured and shipped in the image's
 * runtime layer, which carries no node_modules, and loading zod costs ≈ 50 ms of a launch budget of 100 ms.
 * The schemas stay zod's (`answer-schemas.ts` is generated from them); only their checking is done here.
 */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  enum?: readonly unknown[];
  pattern?: string;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
}

export const JSON_CHECK_KEYWORDS = new Set([
  '$schema',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'items',
  'enum',
  'pattern',
  'maxLength',
  'minimum',
  'maximum',
]);

/** Every way `value` differs from `schema`, by field path from `path`; empty when it fits. */
export function checkJson(schema: JsonSchema, value: unknown, path = 'answer'): WireIssue[] {
  const typeIssue = checkType(schema, value, path);
  if (typeIssue) return [typeIssue];
  const issues: WireIssue[] = [];
  if (schema.enum && !schema.enum.includes(value)) {
    issues.push({ path, message: `must be one of ${schema.enum.join(', ')}` });
  }
  if (typeof value === 'string') issues.push(...checkString(schema, value, path));
  if (typeof value === 'number') issues.push(...checkNumber(schema, value, path));
  const items = schema.items;
  if (Array.isArray(value) && items) {
    for (const [i, v] of value.entries()) issues.push(...checkJson(items, v, `${path}.${i}`));
  }
  if (isObject(value)) issues.push(...checkObject(schema, value, path));
  return issues;
}

function checkType(schema: JsonSchema, value: unknown, path: string): WireIssue | undefined {
  if (schema.type === undefined) return undefined;
  const types = [schema.type].flat();
  const got = typeOf(value);
  if (types.includes(got) || (got === 'integer' && types.includes('number'))) return undefined;
  return { path, message: `must be ${types.join(' or ')}, not ${got === 'integer' ? 'number' : got}` };
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function checkString(schema: JsonSchema, value: string, path: string): WireIssue[] {
  const issues: WireIssue[] = [];
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    issues.push({ path, message: `must be at most ${schema.maxLength} characters` });
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
    issues.push({ path, message: `must match /${schema.pattern}/` });
  }
  return issues;
}

function checkNumber(schema: JsonSchema, value: number, path: string): WireIssue[] {
  const { minimum, maximum } = schema;
  if (minimum !== undefined && value < minimum) return [{ path, message: `must be at least ${minimum}` }];
  if (maximum !== undefined && value > maximum) return [{ path, message: `must be at most ${maximum}` }];
  return [];
}

function checkObject(schema: JsonSchema, value: Record<string, unknown>, path: string): WireIssue[] {
  const issues: WireIssue[] = [];
  for (const name of schema.required ?? []) {
    if (!Object.hasOwn(value, name)) issues.push({ path: `${path}.${name}`, message: 'is required' });
  }
  for (const [name, field] of Object.entries(value)) {
    const where = `${path}.${name}`;
    if (schema.propertyNames) issues.push(...checkJson(schema.propertyNames, name, `${where} (name)`));
    const known = schema.properties && Object.hasOwn(schema.properties, name) ? schema.properties[name] : undefined;
    const other = schema.additionalProperties;
    if (known) issues.push(...checkJson(known, field, where));
    else if (other === false) issues.push({ path: where, message: 'is not a field of this answer' });
    else if (typeof other === 'object') issues.push(...checkJson(other, field, where));
  }
  return issues;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
