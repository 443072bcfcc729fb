import { randomInt } from 'node:crypto';
import { MeshError } from './errors.js';
import { listeningAddresses } from './procfs.js';

/**
 * Loopback addresses for the services of one `veil up`. Programs listen on fixed ports (Redis on 6379), so each
 * service gets an address of its own: random in 127.0.0.0/8 outside 127.0.0.0/24 (where 127.0.0.1 and the
 * addresses other tools pick by habit live), and one nothing listens on yet. Two meshes on one machine, or a
 * mesh and a system service, then do not collide; a listener on the wildcard address (0.0.0.0) still would.
 */
export function freeLoopbackAddresses(
  count: number,
  taken: Set<string> = listeningAddresses(),
  pick = randomAddress,
): string[] {
  const out: string[] = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 1000) {
      throw new MeshError('MESH_ADDRESS', `no free loopback address for ${count} services in 1000 random tries`, {
        hint: "set each service's address in the mesh env (name: address) to a 127.x.y.z address nothing listens on",
      });
    }
    const address = pick();
    if (!taken.has(address) && !out.includes(address)) out.push(address);
  }
  return out;
}

function randomAddress(): string {
  // 127.1.0.1 … 127.255.255.254: never a network or broadcast-looking last byte.
  return `127.${randomInt(1, 256)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}
