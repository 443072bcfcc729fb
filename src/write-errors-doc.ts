import { writeFileSync } from 'node:fs';
import { errorsMarkdown } from './error-catalogue.js';

/** `node dist/write-errors-doc.js <file>`: writes the error catalogue's documentation (docs/errors.md). */
const out = process.argv[2] ?? 'docs/errors.md';
writeFileSync(out, errorsMarkdown());
console.log(`wrote ${out}`);
