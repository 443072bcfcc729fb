import { z } from 'zod';

/**
 * Refusals of what SCONE documents and Veil does not do. A refusal is a zod issue carrying UNSUPPORTED_PARAM
 * (the construct's name) in its params, so that findings and error codes are told apart by this marker and
 * never by the wording of a message; policy/ and manifests/ share it.
 */
export const UNSUPPORTED_PARAM = 'veilUnsupported';

/** `<construct> is not supported by Veil: <why>` — the one wording of every refusal. */
export function unsupportedMessage(construct: string, why: string): string {
  return `${construct} is not supported by Veil: ${why}`;
}

/** A zod issue's construct, when it is a refusal of something Veil does not support. */
export function unsupportedConstruct(issue: { code: string; params?: unknown }): string | undefined {
  if (issue.code !== 'custom' || issue.params === null || typeof issue.params !== 'object') return undefined;
  const construct = (issue.params as Record<string, unknown>)[UNSUPPORTED_PARAM];
  return typeof construct === 'string' ? construct : undefined;
}

/** `field`: the whole field is refused, so its finding points at the key (a refused value, at the value). */
function refusal(construct: string, why: string, field: boolean) {
  return (_value: unknown, ctx: z.RefinementCtx) =>
    ctx.addIssue({
      code: 'custom',
      message: unsupportedMessage(construct, why),
      params: { [UNSUPPORTED_PARAM]: construct, field },
    });
}

/** Whether a refusal is of a whole field (rather than of one of its values). */
export function refusesField(issue: object): boolean {
  return (issue as { params?: Record<string, unknown> }).params?.['field'] === true;
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
