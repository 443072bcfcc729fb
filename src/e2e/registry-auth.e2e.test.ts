import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assembleImage, buildLayer, parseReference, pullImage, pushImage } from '../images/index.js';
import { selfSignedIdentity } from '../secrets/index.js';
import { tempDir } from './harness.js';
import { freePort, startRegistry, type RegistryProcess } from './registry.js';

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A token service as Docker Hub runs one: Basic credentials in, a JWT (ES256, x5c) granting the scope out.
 * docker-registry verifies the token against the certificate it is configured with.
 */
function tokenService(
  port: number,
  identity: { certPem: string; keyPem: string },
  user: string,
  password: string,
): Server {
  const x5c = [new X509Certificate(identity.certPem).raw.toString('base64')];
  const key = createPrivateKey(identity.keyPem);
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (req.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`) {
      res.writeHead(401).end('{"details":"bad credentials"}');
      return;
    }
    const access = url.searchParams.getAll('scope').map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: actions!.split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', x5c }));
    const claims = b64url(
      JSON.stringify({
        iss: 'veil-test-issuer',
        sub: user,
        aud: url.searchParams.get('service'),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      }),
    );
    const signature = sign('sha256', Buffer.from(`${head}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: `${head}.${claims}.${b64url(signature)}` }));
  });
}

describe('registries with bearer-token authentication', () => {
  const dir = tempDir('veil-registry-auth-');
  let registry: RegistryProcess;
  let tokens: Server;
  const dockerConfig = (user: string, password: string, name: string) => {
    const configDir = join(dir.path, name);
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      join(configDir, 'config.json'),
      JSON.stringify({
        auths: { [registry.address]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } },
      }),
    );
    return { DOCKER_CONFIG: configDir };
  };

  before(async () => {
    const identity = selfSignedIdentity({
      commonName: 'veil test token issuer',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
    });
    writeFileSync(join(dir.path, 'token-ca.pem'), identity.certPem);
    const port = await freePort();
    tokens = tokenService(port, identity, 'alice', 's3cret');
    await new Promise<void>((resolve) => tokens.listen(port, '127.0.0.1', () => resolve()));
    registry = await startRegistry(
      dir.path,
      [
        'auth:',
        '  token:',
        `    realm: http://127.0.0.1:${port}/token`,
        '    service: veil-test-registry',
        '    issuer: veil-test-issuer',
        `    rootcertbundle: ${join(dir.path, 'token-ca.pem')}`,
      ].join('\n'),
    );
  });
  after(async () => {
    await registry?.stop();
    tokens?.close();
    dir.cleanup();
  });

  it('pushes and pulls with a token obtained with the Docker config credentials', async () => {
    const image = assembleImage(
      undefined,
      [await buildLayer([{ type: 'file', path: '/hello.txt', mode: 0o644, data: Buffer.from('hi') }])],
      (c) => c,
      ['test'],
    );
    const ref = parseReference(`${registry.address}/private/hello:1`);
    await pushImage(ref, image, { env: dockerConfig('alice', 's3cret', 'good') });
    const pulled = await pullImage(ref, dockerConfig('alice', 's3cret', 'good'));
    assert.equal(pulled.manifest.descriptor.digest, image.manifest.descriptor.digest);
  });

  it('refuses with a clear error, and no credential in it, when the credentials are wrong or missing', async () => {
    const ref = parseReference(`${registry.address}/private/hello:1`);
    await assert.rejects(
      pullImage(ref, dockerConfig('alice', 'wrong-password', 'bad')),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'IMAGE_AUTH');
        assert.match(e.message, /refused access to repository:private\/hello:pull/);
        assert.doesNotMatch(e.message, /wrong-password/);
        return true;
      },
    );
    await assert.rejects(pullImage(ref, { DOCKER_CONFIG: join(dir.path, 'none') }), { code: 'IMAGE_AUTH' });
  });
});
