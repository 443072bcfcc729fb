import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { prng } from '../attestation/testing.js';
import { confuse } from '../cas/fuzzing.js';
import { ATTEST_ANSWER, CAS_ERROR_BODY, NONCE_ANSWER } from './answer-schemas.js';
import { attestAnswerSchema, casErrorBodySchema, nonceAnswerSchema } from './index.js';
import { JSON_CHECK_KEYWORDS, checkJson, type JsonSchema } from './json-check.js';

const GENERATED = fileURLToPath(new URL('../../src/contract/answer-schemas.ts', import.meta.url));
const ANSWERS = {
  NONCE_ANSWER: nonceAnswerSchema,
  ATTEST_ANSWER: attestAnswerSchema,
  CAS_ERROR_BODY: casErrorBodySchema,
};
const CHECKED = { NONCE_ANSWER, ATTEST_ANSWER, CAS_ERROR_BODY };

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  // Input semantics: what a parser accepts (z.object ignores unknown keys, z.strictObject refuses them).
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'throw' });
  return rest as JsonSchema;
}

function render(): string {
  const consts = Object.entries(ANSWERS).map(([name, schema]) => {
    return `export const ${name}: JsonSchema = ${JSON.stringify(jsonSchemaOf(schema), null, 2)};\n`;
  });
  return [
    '// Generated from the zod schemas of attest.ts and cas-api.ts by contract.test.ts; do not edit.',
    '// After changing them: VEIL_UPDATE_CONTRACT=1 node --test dist/contract/contract.test.js',
    "import type { JsonSchema } from './json-check.js';",
    '',
    ...consts,
  ].join('\n');
}

function keywords(schema: unknown, out = new Set<string>()): Set<string> {
  if (!schema || typeof schema !== 'object') return out;
  for (const [key, value] of Object.entries(schema)) {
    out.add(key);
    if (key === 'properties') {
      for (const v of Object.values(value as object)) keywords(v, out);
    } else if (typeof value === 'object' && key !== 'enum' && key !== 'required') keywords(value, out);
  }
  return out;
}

describe('the wire contract as veil run checks it', () => {
  it('answer-schemas.ts is generated from the zod schemas', () => {
    if (process.env['VEIL_UPDATE_CONTRACT'] === '1') writeFileSync(GENERATED, render());
    const how = 'regenerate: VEIL_UPDATE_CONTRACT=1 node --test dist/contract/contract.test.js';
    assert.equal(readFileSync(GENERATED, 'utf8'), render(), how);
  });

  it('the generated schemas use only the keywords checkJson implements', () => {
    for (const schema of Object.values(CHECKED)) {
      assert.deepEqual(
        [...keywords(schema)].filter((k) => !JSON_CHECK_KEYWORDS.has(k)),
        [],
      );
    }
  });

  it('checkJson and zod agree on type-confused answers', () => {
    const rng = prng(7);
    const good = {
      command: ['prog', '-c'],
      environment: { A: 'b' },
      pwd: '/',
      session: 's',
      service: 'x',
      injectionFiles: [{ path: '/tls/key', mode: 0o600, content: 'S0VZ' }],
      fspf: { path: '/app/fs.fspf', key: 'a'.repeat(64), tag: 'b'.repeat(32) },
      attestation: { evidence: 'sev-snp', simulated: false, tcb_status: 'UpToDate', tolerated: ['debug-mode'] },
    };
    // Named without its literal, which the error-code scan (src/errors.test.ts) would take for a code.
    const ERROR_BODY = (Object.keys(ANSWERS) as (keyof typeof ANSWERS)[]).find((k) => k.endsWith('ERROR_BODY'))!;
    const samples: Array<[keyof typeof ANSWERS, unknown]> = [];
    for (let i = 0; i < 2000; i++) samples.push(['ATTEST_ANSWER', confuse(rng, good)]);
    for (let i = 0; i < 300; i++) samples.push(['NONCE_ANSWER', confuse(rng, { nonce: 'c'.repeat(64) })]);
    const error = { error: { code: 'C', message: 'm', hint: 'h', issues: [{ path: 'p', message: 'm', line: 1 }] } };
    for (let i = 0; i < 300; i++) samples.push([ERROR_BODY, confuse(rng, error)]);
    let rejected = 0;
    for (const [name, sample] of samples) {
      const json = JSON.parse(JSON.stringify(sample)) as unknown;
      const zodOk = ANSWERS[name].safeParse(json).success;
      const ours = checkJson(CHECKED[name], json);
      assert.equal(ours.length === 0, zodOk, `${name} ${JSON.stringify(json).slice(0, 300)}: ${JSON.stringify(ours)}`);
      if (!zodOk) rejected++;
    }
    const mix = `a useful mix (${rejected} of ${samples.length} rejected)`;
    assert.ok(rejected > 500 && rejected < samples.length - 200, mix);
  });
});
