import { encryptTree } from '../../fsshield/index.js';
import { usage } from '../errors.js';
import type { Io } from '../io.js';

/** `veil fspf encrypt <srcdir> <outdir>`: prints `tag: <hex> key: <hex>` for the policy's fspf_tag and fspf_key. */
export async function fspfCommand(args: string[], io: Io): Promise<number> {
  const [sub, src, out, ...rest] = args;
  if (sub !== 'encrypt' || !src || !out || rest.length > 0) {
    throw usage(`unknown command 'veil fspf ${args.join(' ')}'`, 'use: veil fspf encrypt <srcdir> <outdir>');
  }
  const result = encryptTree(src, out);
  io.err(`encrypted ${result.files} files from ${src} into ${out}\n`);
  io.out(`tag: ${result.tag} key: ${result.key}\n`);
  return 0;
}
