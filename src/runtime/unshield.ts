/**
 * `node unshield.js SHIELD_DIR STAGING`, started by the namespace helper inside the private namespace when
 * the policy names a shielded tree: verifies and decrypts it into STAGING (a tmpfs). The key and tag arrive
 * on stdin, never in arguments. Exit 126 with the reason on failure, and the program does not start.
 */
import { readFileSync } from 'node:fs';
import { decryptTree } from '../fsshield/index.js';

const [shield, staging] = process.argv.slice(2);
const [key = '', tag = ''] = readFileSync(0, 'utf8').trim().split(' ');
try {
  if (!shield || !staging) throw new Error('usage: unshield.js SHIELD_DIR STAGING');
  await decryptTree(shield, staging, { key, tag });
} catch (err) {
  process.stderr.write(`[VEIL|FATAL] file-system shield: ${(err as Error).message}\n`);
  process.exit(126);
}
