import { z } from 'zod';
import { UNSUPPORTED_PARAM } from '../issues.js';

/**
 * Refusals of what SCONE documents and Veil does not do. A refusal is a zod issue carrying UNSUPPORTED_PARAM
 * (the construct's name) in its params, so that findings and error codes are told apart by this marker and
 * never by the wording of a message; policy/ and manifests/ share it.
 */
export { UNSUPPORTED_PARAM, refusesField, unsupportedConstruct } from '../issues.js';

/** `<construct> is not supported by Veil: <why>` — the one wording of every refusal. */
export function unsupportedMessage(construct: string, why: string): string {
  return `${construct} is not supported by Veil: ${why}`;
}

function refusal(construct: string, why: string, field: boolean) {
  return (_value: unknown, ctx: z.RefinementCtx) =>
    ctx.addIssue({
      code: 'custom',
      message: unsupportedMessage(construct, why),
      params: { [UNSUPPORTED_PARAM]: construct, field },
    });
}

/**
 * A field SCONE documents that Veil refuses whatever its value. The JSON Schema says `not: {}` (never valid),
 * as for z.never, with the reason as its description.
 */
export function unsupported(construct: string, why: string) {
  const schema = z
    .unknown()
    .superRefine(refusal(construct, why, true))
    .meta({ not: {}, description: unsupportedMessage(construct, why) });
  return schema as unknown as z.ZodType<never, unknown>; // nothing passes: the parsed type has no such value
}

/**
 * Values of an enumerated field that SCONE documents and Veil refuses, each with why: to be given as the last
 * form of a union with the supported values, so that a value of this form gets its refusal, not "Invalid option".
 */
export function unsupportedValues(field: string, values: Record<string, string>) {
  const names = Object.keys(values) as [string, ...string[]];
  const schema = z
    .enum(names)
    .superRefine((value, ctx) => refusal(`${field} '${value}'`, values[value]!, false)(value, ctx))
    .meta({ not: {}, description: `not supported by Veil: ${names.join(', ')}` });
  return schema as unknown as z.ZodType<never, string>; // nothing passes: the parsed type has no such value
}

/**
 * A field SCONE documents that Veil accepts only with the value that means what Veil does anyway (SCONE's
 * default, or what SCONE's read-backs write): any other value is refused, pointing at the value, with why.
 */
export function onlyValue<T extends z.ZodType>(construct: string, accepted: T, why: string) {
  const other = z
    .unknown()
    .superRefine(refusal(construct, why, false))
    .meta({ not: {}, description: unsupportedMessage(construct, why) });
  return z.union([accepted, other as unknown as z.ZodType<never, unknown>]);
}
