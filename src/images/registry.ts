import { request, type Dispatcher } from 'undici';
import { dockerCredentials, type Credentials } from './credentials.js';
import { sha256 } from './digest.js';
import { ImageError } from './errors.js';
import { MEDIA, type Descriptor } from './oci.js';
import { registryUrl } from './reference.js';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT';
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const MANIFEST_TYPES = [MEDIA.manifest, MEDIA.index, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');

/**
 * A client of the OCI distribution API for one registry: anonymous, Basic, or Bearer tokens obtained from
 * the realm the registry names in its `WWW-Authenticate` challenge (with the Docker config's credentials).
 */
export class RegistryClient {
  private readonly base: string;
  private readonly credentials: Credentials | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(
    readonly registry: string,
    opts: { env?: NodeJS.ProcessEnv; dispatcher?: Dispatcher } = {},
  ) {
    this.base = registryUrl(registry);
    this.credentials = dockerCredentials(registry, opts.env);
  }

  async manifest(repository: string, reference: string): Promise<{ mediaType: string; data: Buffer; digest: string }> {
    const res = await this.call('GET', repository, `/manifests/${reference}`, { accept: MANIFEST_TYPES }, 'pull');
    if (res.status === 404)
      throw new ImageError('IMAGE_NOT_FOUND', `${this.registry}/${repository}:${reference} does not exist`, {
        hint: 'check the image name and tag (and that it was pushed)',
      });
    this.expect(res, 200, `reading the manifest of ${repository}:${reference}`);
    const digest = sha256(res.body);
    const claimed = header(res, 'docker-content-digest');
    if (reference.startsWith('sha256:') && reference !== digest)
      throw this.digestMismatch(`${repository}@${reference}`, digest);
    if (claimed && claimed !== digest) throw this.digestMismatch(`${repository}:${reference}`, digest);
    return {
      mediaType: header(res, 'content-type')?.split(';')[0] ?? JSON.parse(res.body.toString()).mediaType,
      data: res.body,
      digest,
    };
  }

  async blob(repository: string, descriptor: Descriptor): Promise<Buffer> {
    const res = await this.call('GET', repository, `/blobs/${descriptor.digest}`, {}, 'pull');
    this.expect(res, 200, `reading blob ${descriptor.digest} of ${repository}`);
    if (res.body.length !== descriptor.size || sha256(res.body) !== descriptor.digest)
      throw this.digestMismatch(`blob of ${repository}`, sha256(res.body));
    return res.body;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const res = await this.call('HEAD', repository, `/blobs/${digest}`, {}, 'pull,push');
    return res.status === 200;
  }

  /** Monolithic upload: POST for a session, PUT the bytes with their digest. Skipped when the registry has it. */
  async pushBlob(repository: string, descriptor: Descriptor, data: Buffer): Promise<'pushed' | 'present'> {
    if (await this.hasBlob(repository, descriptor.digest)) return 'present';
    const start = await this.call('POST', repository, '/blobs/uploads/', {}, 'pull,push');
    this.expect(start, 202, `starting an upload to ${repository}`);
    const location = new URL(header(start, 'location') ?? '', this.base);
    location.searchParams.set('digest', descriptor.digest);
    const put = await this.send(
      'PUT',
      location.toString(),
      { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      data,
      `repository:${repository}:pull,push`,
    );
    this.expect(put, 201, `uploading ${descriptor.digest} to ${repository}`);
    return 'pushed';
  }

  async pushManifest(repository: string, reference: string, mediaType: string, data: Buffer): Promise<void> {
    const res = await this.call(
      'PUT',
      repository,
      `/manifests/${reference}`,
      { 'content-type': mediaType },
      'pull,push',
      data,
    );
    this.expect(res, 201, `pushing the manifest of ${repository}:${reference}`);
  }

  private call(
    method: Method,
    repository: string,
    path: string,
    headers: Record<string, string>,
    actions: string,
    body?: Buffer,
  ): Promise<Answer> {
    return this.send(
      method,
      `${this.base}/v2/${repository}${path}`,
      headers,
      body,
      `repository:${repository}:${actions}`,
    );
  }

  private async send(
    method: Method,
    url: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    scope: string,
  ): Promise<Answer> {
    let res = await this.raw(method, url, { ...headers, ...this.authorization(scope, url) }, body);
    if (res.status === 401 && new URL(url).origin === new URL(this.base).origin) {
      await this.authenticate(header(res, 'www-authenticate') ?? '', scope);
      res = await this.raw(method, url, { ...headers, ...this.authorization(scope, url) }, body);
      if (res.status === 401) throw this.denied(scope);
    }
    return res;
  }

  /** Credentials only to the registry itself: an upload Location on another host gets none. */
  private authorization(scope: string, url?: string): Record<string, string> {
    if (url && new URL(url).origin !== new URL(this.base).origin) return {};
    const token = this.tokens.get(scope);
    if (token) return { authorization: token };
    return {};
  }

  /** Answers a challenge: Basic with the stored credentials, or a Bearer token from the named realm. */
  private async authenticate(challenge: string, scope: string): Promise<void> {
    const [scheme] = challenge.split(' ');
    const basic = this.credentials
      ? `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`
      : undefined;
    if (scheme?.toLowerCase() === 'basic') {
      if (!basic) throw this.denied(scope);
      this.tokens.set(scope, basic);
      return;
    }
    const params = Object.fromEntries(
      [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]),
    );
    if (scheme?.toLowerCase() !== 'bearer' || !params['realm']) throw this.denied(scope);
    const url = new URL(params['realm']);
    // Credentials go to the realm only over TLS (or to this machine): a registry cannot send them elsewhere in clear.
    if (basic && url.protocol !== 'https:' && !/^(localhost|127\.[\d.]+|\[::1\])$/.test(url.hostname))
      throw this.denied(scope, `its token service ${url.origin} is not HTTPS`);
    if (params['service']) url.searchParams.set('service', params['service']);
    url.searchParams.set('scope', params['scope'] ?? scope);
    const res = await this.raw('GET', url.toString(), basic ? { authorization: basic } : {});
    if (res.status !== 200) throw this.denied(scope, `the token service answered ${res.status}`);
    const json = JSON.parse(res.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token) throw this.denied(scope, 'the token service sent no token');
    this.tokens.set(scope, `Bearer ${token}`);
  }

  /** One exchange; GET redirects (registries may send blobs from elsewhere) are followed without our credentials. */
  private async raw(
    method: Method,
    url: string,
    headers: Record<string, string>,
    body?: Buffer,
    hops = 0,
  ): Promise<Answer> {
    try {
      const res = await request(url, { method, headers, ...(body ? { body } : {}) });
      const data = Buffer.from(await res.body.arrayBuffer());
      const location = res.headers['location'];
      if (
        method === 'GET' &&
        [301, 302, 303, 307, 308].includes(res.statusCode) &&
        typeof location === 'string' &&
        hops < 3
      ) {
        return this.raw('GET', new URL(location, url).toString(), {}, undefined, hops + 1);
      }
      return { status: res.statusCode, headers: res.headers, body: data };
    } catch (err) {
      throw new ImageError(
        'IMAGE_REGISTRY',
        `cannot reach the registry ${this.registry} (${(err as { code?: string }).code ?? (err as Error).message})`,
        {
          hint: 'check the registry address and that it runs; without network access, build the local bundle only (veil apply --no-image) or use a base image from a reachable registry',
          cause: err,
        },
      );
    }
  }

  private expect(res: Answer, status: number, what: string): void {
    if (res.status === status) return;
    const text = res.body.toString('utf8').slice(0, 300);
    throw new ImageError('IMAGE_REGISTRY', `${what}: the registry ${this.registry} answered ${res.status} ${text}`, {
      hint: "see the registry's message; check names, permissions and its storage",
    });
  }

  private denied(scope: string, why = 'no credentials were accepted'): ImageError {
    return new ImageError('IMAGE_AUTH', `the registry ${this.registry} refused access to ${scope} (${why})`, {
      hint: `log in to ${this.registry} (credentials are read from the Docker config file, ~/.docker/config.json or $DOCKER_CONFIG)`,
    });
  }

  private digestMismatch(what: string, got: string): ImageError {
    return new ImageError('IMAGE_DIGEST', `${what} from ${this.registry} has digest ${got}, not the one expected`, {
      hint: 'the registry or the network altered the content; do not use it',
    });
  }
}

function header(res: Answer, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
