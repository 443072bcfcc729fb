/**
 * The bound of `npm run bench:attest`: a bare node:https server doing the CAS's transport work for one
 * attestation — a TLS handshake with a client certificate (a P-256 leaf under a P-256 CA, as the CAS presents),
 * the peer certificate read once per connection, two small JSON POSTs read and parsed, and an answer of the same
 * bytes as the CAS's real one. Run as its own process: `node bare-server.js ANSWER_FILE [fastify]`; prints
 * `PORT <n>`. With `fastify`, the same work in a bare fastify app (the CAS's framework, with its logger level and
 * its string body parser, JSON parsed in the route, no schemas or hooks of the CAS's): what the framework alone costs.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type ServerOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { testChain } from '../secrets/test-chain.js';

const answer = readFileSync(process.argv[2]!);
const chain = testChain({ commonName: 'bare', endpoint: 'server', dns: ['localhost'], ips: ['127.0.0.1'] });
const tls: ServerOptions = {
  key: chain.keyPem,
  cert: chain.chainPem,
  requestCert: true,
  rejectUnauthorized: false,
};
const seen = new WeakSet<TLSSocket>();
/** What any server that needs the client's key does once per connection. */
const knownClient = (socket: TLSSocket): boolean => {
  if (seen.has(socket)) return true;
  seen.add(socket);
  return socket.getPeerX509Certificate()?.publicKey !== undefined;
};
const nonce = () => JSON.stringify({ nonce: randomBytes(32).toString('hex') });
const announce = (port: number) => process.stdout.write(`PORT ${port}\n`);

if (process.argv[3] === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ https: tls, logger: { level: 'warn' } });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!knownClient(request.raw.socket as TLSSocket)) reply.code(401);
    const body = typeof request.body === 'string' ? request.body : '';
    if (body.length > 0) JSON.parse(body);
    reply.type('application/json');
    return request.url === '/v1/attest/nonce' ? nonce() : answer;
  };
  app.post('/v1/attest/nonce', handler);
  app.post('/v1/attest', handler);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  announce(typeof address === 'object' && address ? address.port : 0);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
} else {
  const server = createServer(tls, (req, res) => {
    if (!knownClient(req.socket as TLSSocket)) res.statusCode = 401;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.length > 0) JSON.parse(body);
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/v1/attest/nonce' ? nonce() : answer);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    announce(typeof address === 'object' && address ? address.port : 0);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
