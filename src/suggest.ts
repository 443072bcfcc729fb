import type { z } from 'zod';
import type { PathSegment } from './issues.js';

/**
 * "Did you mean …?" for unknown keys: the keys a zod schema allows at a path, and the one closest to a typo.
 * No library of the project computes edit distances, and this one is twenty lines.
 */

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  out?: z.ZodType;
  valueType?: z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
  getter?: () => z.ZodType;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Schemas are walked this deep at most (a session is at most MAX_DEPTH deep, and lazy schemas could recurse). */
const MAX_WALK = 256;

/** The object schemas a value at `path` is checked against: every form of a union, through wrappers. */
function objectsAt(schema: z.ZodType, path: readonly PathSegment[], budget = { left: MAX_WALK }): Def[] {
  if (--budget.left < 0) return [];
  const def = defOf(schema);
  const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined) ?? def.getter?.();
  if (inner) return objectsAt(inner, path, budget);
  if (def.type === 'union') return (def.options ?? []).flatMap((o) => objectsAt(o, path, budget));
  if (def.type === 'intersection') return [def.left!, def.right!].flatMap((o) => objectsAt(o, path, budget));
  if (path.length === 0) return def.type === 'object' ? [def] : [];
  const [head, ...rest] = path;
  if (def.type === 'object' && typeof head === 'string' && def.shape?.[head])
    return objectsAt(def.shape[head], rest, budget);
  if (def.type === 'array' && typeof head === 'number' && def.element) return objectsAt(def.element, rest, budget);
  if (def.type === 'record' && def.valueType) return objectsAt(def.valueType, rest, budget);
  return [];
}

/** The keys the schema allows in the map at `path` (all forms together), in the schema's order. */
export function allowedKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  return [...new Set(objectsAt(schema, path).flatMap((d) => Object.keys(d.shape ?? {})))];
}

/** Edit distance with transpositions (optimal string alignment): `clinet` is one edit from `client`. */
function distance(a: string, b: string): number {
  let before: number[] = [];
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      next.push(d);
    }
    before = row;
    row = next;
  }
  return row[b.length]!;
}

/** Longer keys are not compared: no allowed key is near one, and the distance would cost their product. */
const MAX_KEY = 64;

/**
 * The allowed key nearest a typo, quoted, when it is near enough to be meant: at most 2 edits, and fewer than a
 * third of the key (so `ab` suggests nothing); `-` for `_` and case count as no edit.
 */
export function suggestion(key: string, allowed: readonly string[]): string | undefined {
  if (key.length > MAX_KEY) return undefined;
  const norm = (k: string) => k.toLowerCase().replaceAll('-', '_');
  let best: { key: string; d: number } | undefined;
  for (const candidate of allowed) {
    if (candidate.length > MAX_KEY) continue;
    const d = distance(norm(key), norm(candidate));
    if (d <= 2 && d < Math.max(key.length, candidate.length) / 3 && (!best || d < best.d)) best = { key: candidate, d };
  }
  return best ? `'${best.key}'` : undefined;
}
