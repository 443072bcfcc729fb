import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sessionJsonSchema } from './json-schema.js';

/** `node dist/policy/write-schemas.js <outdir>`: writes the published JSON Schema of sessions. */
const outDir = process.argv[2] ?? 'schemas';
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'session.schema.json'), `${JSON.stringify(sessionJsonSchema(), null, 2)}\n`);
console.log(`wrote ${join(outDir, 'session.schema.json')}`);
