import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ImageError } from './errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Credentials for a registry from the Docker config file (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`): `auths.<registry>.auth` (base64 `user:password`) or `username`/`password`.
 * Credential helpers (`credsStore`) are not run.
 */
export function dockerCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const file = join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
  if (!existsSync(file)) return undefined;
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as typeof config;
  } catch (err) {
    throw new ImageError('IMAGE_AUTH', `${file} is not valid JSON`, {
      hint: 'fix the Docker config file, or point DOCKER_CONFIG elsewhere',
      cause: err,
    });
  }
  const keys =
    registry === 'docker.io'
      ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io']
      : [registry, `https://${registry}`, `http://${registry}`];
  const entry = keys.map((k) => config.auths?.[k]).find(Boolean);
  if (!entry) return undefined;
  if (entry.username !== undefined && entry.password !== undefined)
    return { username: entry.username, password: entry.password };
  if (!entry.auth) return undefined;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0)
    throw new ImageError('IMAGE_AUTH', `the auth entry for ${registry} in ${file} is not base64 of user:password`, {
      hint: "log in again (e.g. 'skopeo login'), or fix the entry",
    });
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
