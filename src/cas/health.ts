import type { FastifyInstance } from 'fastify';
import { aliveAnswerSchema, noQuerySchema, readyzAnswerSchema } from '../contract/index.js';
import { CasError } from './errors.js';
import { checkReady } from './store-choice.js';
import type { Store } from './store/index.js';
import { answer } from './wire.js';

const ALIVE = { schema: { querystring: noQuerySchema, response: { 200: answer(aliveAnswerSchema) } } };
const READY = { schema: { querystring: noQuerySchema, response: { 200: answer(readyzAnswerSchema) } } };

/**
 * Probes, answered without a client certificate: liveness (`/healthz`) checks nothing but the process, so
 * a database outage takes replicas out of the Service (`/readyz`) without restarting them.
 */
export function registerHealth(
  app: FastifyInstance,
  store: Store,
  keysLoaded: () => boolean,
  auditProblem: () => string | undefined = () => undefined,
  worker?: number,
): void {
  // Which worker answered (README "The CAS on every core"): a connection reaches one worker for its life.
  const alive = worker === undefined ? { alive: true as const } : { alive: true as const, worker };
  app.get('/healthz', ALIVE, async () => alive);
  const ready = async () => {
    if (!keysLoaded()) {
      throw new CasError('CAS_NOT_READY', "the CAS's keys (CA, TLS, session encryption) are not loaded yet", {
        hint: 'wait for the CAS to finish starting; its log says what failed if it does not',
      });
    }
    // Every operation records before it answers: a replica whose log cannot take entries answers nothing useful.
    const problem = auditProblem();
    if (problem !== undefined) {
      throw new CasError('CAS_AUDIT_UNAVAILABLE', `not ready: the audit log cannot take entries (${problem})`, {
        hint: 'check the store (the CAS log says why the commit failed); readiness returns once a commit succeeds',
      });
    }
    return checkReady(store);
  };
  app.get('/readyz', READY, ready);
  // The first name of readiness, kept for existing probes and scripts.
  app.get('/v1/health/ready', READY, ready);
}
