import { ImageError } from './errors.js';

/** An image reference split as registries need it: `registry/repository[:tag][@digest]`. */
export interface ImageRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'docker.io';

/** Parses references the way Docker does: a first part with a dot, a colon or `localhost` names a registry. */
export function parseReference(text: string): ImageRef {
  const match =
    /^(?:([^/]+)\/)?([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(
      text,
    );
  if (!match) throw invalid(text);
  let [, first, rest, tag, digest] = match;
  let registry = first ?? DOCKER_HUB;
  if (first && !/[.:]/.test(first) && first !== 'localhost') {
    rest = `${first}/${rest}`;
    registry = DOCKER_HUB;
  }
  const repository = registry === DOCKER_HUB && !rest!.includes('/') ? `library/${rest}` : rest!;
  return { registry, repository, ...(tag || !digest ? { tag: tag ?? 'latest' } : {}), ...(digest ? { digest } : {}) };
}

export function formatReference(ref: ImageRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Where the registry's API answers. Loopback registries speak plain HTTP, as Docker allows by default. */
export function registryUrl(registry: string): string {
  if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || /^127\./.test(host) || host === '::1';
  return `${loopback ? 'http' : 'https'}://${registry}`;
}

function invalid(text: string): ImageError {
  return new ImageError('IMAGE_REFERENCE', `'${text}' is not an image reference`, {
    hint: 'write [registry/]repository[:tag][@sha256:digest], e.g. 127.0.0.1:5000/app/api:1 or python:3.11-slim',
  });
}
