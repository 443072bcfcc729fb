import { createHash, createHmac } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** HMAC (under the shield key, so it says nothing to whoever lacks the key) of the plaintext tree. */
export function plainTreeMac(root: string, key: string): string {
  const mac = createHmac('sha256', Buffer.from(key, 'hex')).update('veil-shield-source-v1\0');
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else
        mac.update(`${path}\0${statSync(join(root, path)).mode & 0o777}\0`).update(
          createHash('sha256')
            .update(readFileSync(join(root, path)))
            .digest(),
        );
    }
  };
  walk('');
  return mac.digest('hex');
}
