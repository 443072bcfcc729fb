import { hostKeyPath, loadHostKey } from '../../runtime/host-key.js';
import { usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/**
 * `veil host id`: this host's platform ID, the one a session lists in `services[].platforms` to accept this
 * host's simulation evidence (the key is made on first use). `veil host show` adds where the key is.
 */
export const id = defineCommand(
  { name: 'host id', usage: [''], summary: "prints this host's platform ID (made on first use)", options: {} },
  async (_, io) => {
    io.out(`${(await loadHostKey(hostKeyPath(io.env))).id}\n`);
    return 0;
  },
);

export const show = defineCommand(
  { name: 'host show', usage: [''], summary: "prints this host's platform ID and where its key is", options: {} },
  async (_, io) => {
    const key = await loadHostKey(hostKeyPath(io.env));
    io.out(`platform id: ${key.id}\nhost key: ${key.path}\n`);
    return 0;
  },
);

/**
 * The hosts the policies of `--mode debug` list: this host (its key made on first use) and the IDs given with
 * `--platform` (other hosts, e.g. the nodes a debug chart runs on). None in production mode, where
 * `--platform` is refused: it means something for simulation evidence only.
 */
export async function debugPlatforms(
  mode: 'production' | 'debug',
  extra: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  for (const id of extra ?? []) {
    if (!/^[0-9a-f]{64}$/.test(id)) {
      throw usage(
        `--platform ${id} is not a host ID (64 lower-case hex digits)`,
        "'veil host id' on that host prints it",
      );
    }
  }
  if (mode === 'production') {
    if (extra?.length) {
      throw usage(
        '--platform needs --mode debug',
        'platforms list the hosts whose simulation evidence a session accepts',
      );
    }
    return [];
  }
  return [...new Set([(await loadHostKey(hostKeyPath(env))).id, ...(extra ?? [])])];
}
