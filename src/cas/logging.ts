import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** An incoming `x-request-id` is kept only in this shape, so a log line never carries free text from it. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{7,63}$/;

/** The request's ID: the caller's `x-request-id` when it is a plain token, else a random UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
}

/** The path without its query: a query is client text the CAS never reads, and may hold anything. */
function pathOf(url: string | undefined): string {
  const path = (url ?? '').split('?')[0] ?? '';
  return path.length > 512 ? `${path.slice(0, 512)}…` : path;
}

/**
 * What a request's log lines say of it: method, path, host and peer address. Nothing else of the request —
 * headers, query and body may hold secret values — and of the answer only its status.
 */
export const LOG_SERIALIZERS = {
  req: (req: FastifyRequest) => ({
    method: req.method,
    url: pathOf(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }),
  res: (reply: Pick<FastifyReply, 'statusCode'>) => ({ statusCode: reply.statusCode }),
};

/** Debug: which route pattern a request reached and how large its body was. Never the body itself. */
export async function logRouted(request: FastifyRequest): Promise<void> {
  request.log.debug({ route: request.routeOptions.url, bytes: request.headers['content-length'] }, 'routed');
}
