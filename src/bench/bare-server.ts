/**
 * The bound of `npm run bench:attest`: a bare node:https server doing the CAS's transport work for one
 * attestation — a TLS handshake with a client certificate (a P-256 leaf under a P-256 CA, as the CAS presents),
 * the peer certificate read once per connection, two small JSON POSTs read and parsed, and an answer of the same
 * bytes as the CAS's real one. Run as its own process: `node bare-server.js ANSWER_FILE`; prints `PORT <n>`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';

const answer = readFileSync(process.argv[2]!);
const day = 864e5;
const caKey = generatePrivateKey('P-256');
const span = { notBefore: new Date(Date.now() - day), notAfter: new Date(Date.now() + day) };
const caDer = issueCertificate({ subjectKey: caKey, commonName: 'bare CA', isCa: true, ...span });
const key = generatePrivateKey('P-256');
const leaf = issueCertificate({
  subjectKey: key,
  commonName: 'bare',
  isCa: false,
  endpoint: 'server',
  issuer: { certDer: caDer, key: caKey },
  dns: ['localhost'],
  ips: ['127.0.0.1'],
  ...span,
});
const seen = new WeakSet<TLSSocket>();
const server = createServer(
  {
    key: pemEncode('PRIVATE KEY', key.pkcs8),
    cert: pemEncode('CERTIFICATE', leaf) + pemEncode('CERTIFICATE', caDer),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (req, res) => {
    const socket = req.socket as TLSSocket;
    // What any server that needs the client's key does once per connection.
    if (!seen.has(socket)) {
      seen.add(socket);
      if (!socket.getPeerX509Certificate()?.publicKey) res.statusCode = 401;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (body.length > 0) JSON.parse(body);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/attest/nonce') res.end(JSON.stringify({ nonce: randomBytes(32).toString('hex') }));
      else res.end(answer);
    });
  },
);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
