#!/usr/bin/env node
// Thin entry point: the CLI lives in dist/cli (built by `npm run build`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`veil: internal error: ${err?.message ?? err}`);
    process.exitCode = 70;
  },
);
