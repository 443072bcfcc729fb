import { encryptTree } from '../../fsshield/index.js';
import { usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/** `veil fspf encrypt <srcdir> <outdir>`: prints `tag: <hex> key: <hex>` for the policy's fspf_tag and fspf_key. */
export const encrypt = defineCommand(
  {
    name: 'fspf encrypt',
    usage: ['SRCDIR OUTDIR'],
    summary: 'encrypts SRCDIR into OUTDIR; prints the fspf_tag and fspf_key the policy names',
    options: {},
    positionals: true,
  },
  ({ positionals }, io) => {
    const [src, out, ...rest] = positionals;
    if (!src || !out || rest.length > 0) throw usage('needs SRCDIR and OUTDIR', 'veil fspf encrypt app/ shielded/');
    const result = encryptTree(src, out);
    io.err(`encrypted ${result.files} files from ${src} into ${out}\n`);
    io.out(`tag: ${result.tag} key: ${result.key}\n`);
    return 0;
  },
);
