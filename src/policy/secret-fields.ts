import type { z } from 'zod';
import { REDACTED, secretFields, writtenSessionSchema, type WrittenSession } from './schema.js';

/** A step of a field path: an object key, `[]` any element of a list, `{}` any value of a map. */
export type FieldStep = string;
const LIST = '[]';
const MAP = '{}';

/**
 * Every secret-bearing field, found by walking the session schema for the fields registered in
 * `secretFields`: marking a field in the schema is all it takes to redact it, keep it out of the hash and
 * keep it on update.
 */
export const SECRET_FIELD_PATHS: readonly FieldStep[][] = collect(writtenSessionSchema, [], []);

function collect(schema: z.ZodType, path: FieldStep[], out: FieldStep[][]): FieldStep[][] {
  if (secretFields.has(schema)) {
    if (!out.some((p) => p.join('.') === path.join('.'))) out.push(path);
    return out;
  }
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  const inner = (key: string) => def[key] as z.ZodType;
  switch (def.type) {
    case 'object':
      for (const [key, field] of Object.entries(def['shape'] as Record<string, z.ZodType>)) {
        collect(field, [...path, key], out);
      }
      break;
    case 'array':
      collect(inner('element'), [...path, LIST], out);
      break;
    case 'record':
      collect(inner('valueType'), [...path, MAP], out);
      break;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      collect(inner('innerType'), path, out);
      break;
    case 'union':
      for (const option of def['options'] as z.ZodType[]) collect(option, path, out);
      break;
    case 'pipe':
      collect(inner('in'), path, out);
      collect(inner('out'), path, out);
      break;
    default:
      break;
  }
  return out;
}

type Data = unknown;
const isMap = (v: Data): v is Record<string, Data> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The session with every secret-bearing field that is present replaced by REDACTED (a copy). */
export function redactSession<T extends WrittenSession>(session: T): T {
  let out: Data = session;
  for (const path of SECRET_FIELD_PATHS) out = mapAt(out, path, () => REDACTED);
  return out as T;
}

function mapAt(value: Data, path: readonly FieldStep[], fn: (old: Data) => Data): Data {
  const [step, ...rest] = path;
  if (step === undefined) return fn(value);
  if (step === LIST) return Array.isArray(value) ? value.map((v) => mapAt(v, rest, fn)) : value;
  if (!isMap(value)) return value;
  if (step === MAP) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapAt(v, rest, fn)]));
  if (!Object.hasOwn(value, step) || value[step] === undefined) return value;
  return { ...value, [step]: mapAt(value[step], rest, fn) };
}

/**
 * An update that sends REDACTED in a secret-bearing field keeps the value the current version has there:
 * list elements are matched by `name` (secrets, services), map values by key. Returns the session
 * with the stored values put back, and the paths where there was nothing to keep.
 */
export function restoreRedacted<T extends WrittenSession>(
  next: T,
  current: WrittenSession | undefined,
): { session: T; kept: number; missing: string[] } {
  const missing: string[] = [];
  const seen = { kept: 0 };
  let out: Data = next;
  for (const path of SECRET_FIELD_PATHS) out = restoreAt(out, current, path, '', missing, seen);
  return { session: out as T, kept: seen.kept, missing };
}

type Seen = { kept: number };

function restoreAt(
  value: Data,
  old: Data,
  path: readonly FieldStep[],
  where: string,
  missing: string[],
  seen: Seen,
): Data {
  const [step, ...rest] = path;
  const down = (v: Data, o: Data, at: string) => restoreAt(v, o, rest, at, missing, seen);
  if (step === undefined) {
    if (value !== REDACTED) return value;
    if (old === undefined || old === REDACTED) {
      missing.push(where);
      return value;
    }
    seen.kept += 1;
    return old;
  }
  if (step === LIST) {
    if (!Array.isArray(value)) return value;
    return value.map((v, i) => down(v, counterpart(v, old, i), `${where}[${i}]`));
  }
  if (!isMap(value)) return value;
  const oldMap = isMap(old) ? old : {};
  if (step === MAP) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, down(v, own(oldMap, k), `${where}.${k}`)]));
  }
  if (!Object.hasOwn(value, step) || value[step] === undefined) return value;
  const at = where ? `${where}.${step}` : step;
  return { ...value, [step]: down(value[step], own(oldMap, step), at) };
}

/**
 * The fields that decide how a secret's value is read and shown. A value kept under another kind would be
 * read as that kind: an explicit private key kept as an `export_public` ascii secret would be published, and
 * a failed check of the kept value would tell the updater something about it. So an element whose fields
 * here changed has no counterpart, and its REDACTED is refused like one with nothing to keep.
 */
const VALUE_SHAPING = ['kind', 'key_type', 'size', 'private_key', 'import'] as const;

/** The element of the old list that stands for `v`: the one with the same name, else the same position. */
function counterpart(v: Data, old: Data, index: number): Data {
  if (!Array.isArray(old)) return undefined;
  const match =
    isMap(v) && typeof v['name'] === 'string' ? old.find((o) => isMap(o) && o['name'] === v['name']) : old[index];
  return isMap(v) && isMap(match) && !sameShape(v, match) ? undefined : match;
}

function sameShape(v: Record<string, Data>, old: Record<string, Data>): boolean {
  return VALUE_SHAPING.every((field) => JSON.stringify(v[field]) === JSON.stringify(old[field]));
}

function own(map: Record<string, Data>, key: string): Data {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}
