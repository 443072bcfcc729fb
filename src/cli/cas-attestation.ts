import { X509Certificate, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, request } from 'node:https';
import { checkIdentity, checkPlatform, type AttestationVariant } from '../attestation/policy.js';
import { casReportData, type Evidence } from '../attestation/evidence.js';
import { AttestationError } from '../attestation/errors.js';
import { verifyHardware } from '../attestation/hardware.js';
import type { CollateralProvider, HardwareType, VerificationResult } from '../attestation/types.js';
import { connectCas, sameHex, type PinnedCas } from '../runtime/cas-identity.js';
import { describeIssues, issuesOf, selfAttestationSchema, type SelfAttestationAnswer } from '../contract/index.js';
import { CliError } from './errors.js';

/** What `veil cas attest` accepts of the CAS's TEE, from SCONE's flags (-C, -G, -S, --only_for_testing-*). */
export interface CasExpectations {
  fingerprint?: string | undefined;
  trustAny: boolean;
  tolerate: string[];
  /** Advisory IDs to accept (or '*'): `veil cas attest --ignore-advisories`. */
  ignoreAdvisories?: '*' | string[] | undefined;
  /** The CAS's identity (measurement options); none with --only_for_testing-trust-any. */
  identity: AttestationVariant[];
  collateral?: CollateralProvider | undefined;
  now: Date;
  /** The verifier (Veil's hardware verifiers unless a test gives its own). */
  verify?: typeof verifyHardware;
}

export interface CasAttestation {
  pin: PinnedCas;
  /** Undefined when the CAS has no TEE and was trusted by its fingerprint alone. */
  result?: VerificationResult;
}

const WIRE: Record<Exclude<Evidence['type'], 'simulation'>, HardwareType> = {
  tdx: 'tdx',
  'sgx-dcap': 'sgx',
  'sev-snp': 'snp',
};

/**
 * Asks the CAS for evidence binding a fresh nonce and its CA key, over the TLS connection whose CA we then
 * pin. Hardware evidence is verified like a service's (chain, collateral, TCB against the tolerations, the
 * identity); a CAS without a TEE can only be trusted by a fingerprint the user compared out of band.
 */
export async function attestCasTee(url: string, want: CasExpectations): Promise<CasAttestation> {
  const { socket, pin } = await connectCas(url, { fingerprint: want.fingerprint, trustAny: true });
  const nonce = randomBytes(32);
  let answer: SelfAttestationAnswer;
  try {
    answer = selfAttestationOf(await getJson(socket, `${url}/v1/attestation?nonce=${nonce.toString('hex')}`), url);
  } finally {
    socket.destroy();
  }
  if (!answer.evidence) {
    if (want.identity.length > 0) {
      throw new CliError(
        'CLI_CAS_UNTRUSTED',
        `the CAS at ${url} has no TEE evidence, so the measurement you gave cannot be checked`,
        {
          hint: 'leave out the measurement options to trust it by its fingerprint (-c) alone, knowingly',
        },
      );
    }
    if (want.fingerprint || want.trustAny) return { pin }; // connectCas compared the fingerprint already
    throw new CliError(
      'CLI_CAS_UNTRUSTED',
      `the CAS at ${url} has no TEE evidence (${answer.note ?? 'none given'}), and no fingerprint was given to check it by`,
      {
        hint: "pass -c <fingerprint> as 'veil cas serve' printed it, compared out of band",
      },
    );
  }
  const evidence = answer.evidence;
  const type = WIRE[evidence.type];
  if (!type)
    throw new CliError('CLI_CAS_UNTRUSTED', `the CAS at ${url} sent evidence of an unknown type`, {
      hint: 'this is not a Veil CAS',
    });
  const result = await (want.verify ?? verifyHardware)(
    {
      type,
      evidence: Buffer.from(evidence.quote, 'base64'),
      auxblob: evidence.type === 'sev-snp' && evidence.auxblob ? Buffer.from(evidence.auxblob, 'base64') : undefined,
    },
    { now: want.now, collateral: want.collateral },
  );
  const caSpki = new X509Certificate(pin.caPem).publicKey.export({ type: 'spki', format: 'der' });
  const expected = casReportData(nonce, caSpki);
  if (result.reportData.length !== expected.length || !timingSafeEqual(result.reportData, expected)) {
    throw new AttestationError(
      'ATTESTATION_BINDING',
      "the CAS's evidence does not bind this nonce and the CA key it presents",
      { check: 'report data' },
    );
  }
  checkPlatform(result, { tolerate: want.tolerate, ignore_advisories: want.ignoreAdvisories });
  // The identity is checked when given; a fingerprint alone pins the CA key, whose TEE was just verified.
  if (want.identity.length > 0) checkIdentity(result, { attestation: want.identity });
  else if (!want.fingerprint && !want.trustAny) {
    throw new CliError(
      'CLI_CAS_UNTRUSTED',
      `the CAS at ${url} sent valid evidence, but nothing says which CAS it must be`,
      { hint: 'pass its measurement (--mrenclave, --mrtd, --measurement) or -c <fingerprint>' },
    );
  }
  if (want.fingerprint && !sameHex(want.fingerprint, pin.fingerprint)) {
    throw new CliError(
      'CLI_CAS_UNTRUSTED',
      `the CAS at ${url} presents CA fingerprint ${pin.fingerprint}, not ${want.fingerprint}`,
      { hint: 'do not use this CAS' },
    );
  }
  return { pin, result };
}

function selfAttestationOf(json: unknown, url: string): SelfAttestationAnswer {
  const parsed = selfAttestationSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = describeIssues(issuesOf(parsed.error, 'answer', json));
  throw new CliError('CLI_CAS_ERROR', `${url}/v1/attestation answered outside the CAS API: ${issues}`, {
    hint: 'the CLI and the CAS must be compatible Veil versions; check that the address names a Veil CAS',
  });
}

function getJson(socket: import('node:tls').TLSSocket, url: string): Promise<unknown> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agent.createConnection = () => socket;
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.length > 1 << 20) req.destroy(new Error('answer too large'));
      });
      res.on('end', () => {
        try {
          const json = JSON.parse(text);
          if ((res.statusCode ?? 500) >= 400)
            reject(
              new CliError('CLI_CAS_ERROR', json?.error?.message ?? `the CAS answered ${res.statusCode}`, {
                hint: json?.error?.hint ?? 'see the CAS log',
              }),
            );
          else resolve(json);
        } catch (err) {
          reject(
            new CliError('CLI_CAS_ERROR', `the CAS at ${url} did not answer JSON`, {
              hint: 'is this a Veil CAS?',
              cause: err,
            }),
          );
        }
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.on('error', (err) =>
      reject(
        new CliError('CLI_CAS_UNREACHABLE', `cannot reach the CAS at ${url} (${err.message})`, {
          hint: 'check the address',
          cause: err,
        }),
      ),
    );
    req.end();
  });
}
