import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { selfSignedIdentity } from '../secrets/index.js';
import type { RunningCas } from './server.js';

/** Shared by the CAS's tests. A TLS identity as the runtime makes one: a fresh key, a self-signed certificate. */
export function ephemeral() {
  return selfSignedIdentity({
    commonName: 'veil runtime',
    endpoint: 'client',
    notBefore: new Date(Date.now() - 6e4),
    notAfter: new Date(Date.now() + 36e5),
  });
}

export type Identity = ReturnType<typeof ephemeral>;

/** A JSON answer as the tests read it. */
// biome-ignore lint/suspicious/noExplicitAny: tests reach deep into answers of many shapes; their assertions check them
export type TestJson = any;

/** POST `body` to the CAS as `who`, trusting only the CAS's CA. */
export async function post(
  cas: RunningCas,
  who: Identity,
  path: string,
  body: string,
): Promise<{ status: number; json: TestJson }> {
  const agent = new Agent({ connect: { ca: cas.identity.caCertPem, cert: who.certPem, key: who.keyPem } });
  try {
    const res = await request(`${cas.url}${path}`, { method: 'POST', body, dispatcher: agent });
    return { status: res.statusCode, json: (await res.body.json()) as TestJson };
  } finally {
    await agent.close();
  }
}

/** A raw HTTP/1.1 exchange over TLS: for requests no client library would send (odd paths, methods, headers). */
export function rawExchange(cas: RunningCas, who: Identity | undefined, request: Buffer, timeoutMs = 10_000) {
  return new Promise<RawAnswer>((resolve, reject) => {
    const cert = who ? { cert: who.certPem, key: who.keyPem } : {};
    const ca = cas.identity.caCertPem;
    const socket = connect({ host: cas.host, port: cas.port, ca, servername: 'localhost', ...cert });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    // No half-close at once: Node's HTTP server drops a request whose client ended its side before an async
    // handler answered. The side is ended only when no complete answer came within a while (a request the
    // server still waits for the rest of, as many fuzzed ones are).
    let halfClose: NodeJS.Timeout | undefined;
    socket.on('secureConnect', () => {
      socket.write(request);
      halfClose = setTimeout(() => socket.end(), Math.min(1_000, timeoutMs / 2));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (answered(Buffer.concat(chunks))) socket.end();
    });
    socket.on('close', () => clearTimeout(halfClose));
    socket.on('error', (err) => {
      if (chunks.length > 0) return;
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks)));
    });
  });
}

export interface RawAnswer {
  /** 0 when the server closed without an HTTP answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** `data` holds a whole answer: its headers and the body they announce (content-length or chunked). */
function answered(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0 || /^HTTP\/1\.[01] 1\d\d /.test(data.subarray(0, 13).toString('latin1'))) return false;
  const head = data.subarray(0, end).toString('latin1').toLowerCase();
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length) return data.length - end - 4 >= Number(length[1]);
  if (/\r\ntransfer-encoding: *chunked/.test(head)) return data.subarray(-5).toString('latin1') === '0\r\n\r\n';
  return false;
}

/** The first HTTP response in `data` (content-length or chunked bodies). */
export function parseRaw(answer: Buffer): RawAnswer {
  let data = answer;
  // Interim answers (100 Continue) come before the real one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(data.subarray(0, 13).toString('latin1')) && data.indexOf('\r\n\r\n') > 0) {
    data = data.subarray(data.indexOf('\r\n\r\n') + 4);
  }
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: {}, body: data.toString('latin1') };
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  return { status, headers, body: body.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    const size = eol < 0 ? 0 : parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!size) return Buffer.concat(parts);
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
