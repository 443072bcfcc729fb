import { usage } from '../errors.js';
import { loadIdentity, veilHome } from '../home.js';
import type { Io } from '../io.js';

export async function selfCommand(args: string[], io: Io): Promise<number> {
  const [sub] = args;
  const identity = loadIdentity(veilHome(io.env));
  if (sub === 'show') {
    io.out(`key hash: ${identity.keyHash}\n${identity.certPem}`);
    return 0;
  }
  if (sub === 'show-key-hash') {
    io.out(`${identity.keyHash}\n`);
    return 0;
  }
  if (sub === 'show-certificate') {
    io.out(identity.certPem);
    return 0;
  }
  throw usage(
    `unknown command 'veil self ${sub ?? ''}'`,
    "use 'veil self show', 'show-key-hash' or 'show-certificate'",
  );
}
