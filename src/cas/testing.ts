import { Agent, request } from 'undici';
import { selfSignedIdentity } from '../secrets/index.js';
import type { RunningCas } from './server.js';

/** Shared by the CAS's tests. A TLS identity as the runtime makes one: a fresh key, a self-signed certificate. */
export function ephemeral() {
  return selfSignedIdentity({ commonName: 'veil runtime', endpoint: 'client', notBefore: new Date(Date.now() - 6e4), notAfter: new Date(Date.now() + 36e5) });
}

export type Identity = ReturnType<typeof ephemeral>;

/** POST `body` to the CAS as `who`, trusting only the CAS's CA. */
export async function post(cas: RunningCas, who: Identity, path: string, body: string): Promise<{ status: number; json: any }> {
  const agent = new Agent({ connect: { ca: cas.identity.caCertPem, cert: who.certPem, key: who.keyPem } });
  try {
    const res = await request(`${cas.url}${path}`, { method: 'POST', body, dispatcher: agent });
    return { status: res.statusCode, json: (await res.body.json()) as any };
  } finally {
    await agent.close();
  }
}
