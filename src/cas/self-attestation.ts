import { X509Certificate } from 'node:crypto';
import { DEFAULT_TSM_BASE, nodeTsmFs, tsmReport, type TsmFs } from '../attestation/configfs-tsm.js';
import { casReportData, type Evidence } from '../attestation/index.js';
import { CasError } from './errors.js';

/** Where a CAS in a confidential VM gets evidence about itself (configfs-tsm); absent without a TEE. */
export type SelfEvidenceSource = (reportData: Buffer) => Promise<Exclude<Evidence, { type: 'simulation' }>>;

export interface SelfAttestation {
  ca_fingerprint: string;
  /** Null when the CAS has no TEE: then only its CA fingerprint identifies it. */
  evidence: Exclude<Evidence, { type: 'simulation' }> | null;
  /** How the evidence's report data was formed, for clients that check it by hand. */
  binding: string;
  note?: string;
}

/** Quote generation waits on the host's quoting service: a few at a time, the rest are told to retry. */
export const MAX_PENDING_SELF_ATTESTATIONS = 4;
/** How long one report may take before the client is told the TEE is unavailable. */
export const SELF_ATTESTATION_TIMEOUT_MS = 30_000;

/**
 * `GET /v1/attestation?nonce=<64 hex>`: evidence binding the client's nonce and the CAS's CA key, so a client
 * can pin the CA after verifying the TEE it runs in (`veil cas attest`). Unauthenticated, like SCONE's.
 */
export function selfAttestation(
  identity: { caCertPem: string; fingerprint: string },
  source: SelfEvidenceSource | undefined,
) {
  const caSpki = new X509Certificate(identity.caCertPem).publicKey.export({ type: 'spki', format: 'der' });
  let pending = 0;
  return async (nonceHex: unknown): Promise<SelfAttestation> => {
    if (typeof nonceHex !== 'string' || !/^[0-9a-f]{64}$/.test(nonceHex)) {
      throw new CasError(
        'CAS_BAD_REQUEST',
        'GET /v1/attestation needs ?nonce=<64 lower-case hex digits> (32 random bytes)',
        { hint: 'veil cas attest makes one' },
      );
    }
    const binding = 'SHA-256("veil-cas-attestation-v1" ‖ nonce ‖ SPKI DER of the CA key) ‖ 32 zero bytes';
    if (!source) {
      return {
        ca_fingerprint: identity.fingerprint,
        evidence: null,
        binding,
        note: 'this CAS runs without a TEE: it can be trusted only by its CA fingerprint, compared out of band',
      };
    }
    if (pending >= MAX_PENDING_SELF_ATTESTATIONS) {
      throw new CasError('CAS_BUSY', 'the CAS is producing other attestation reports', { hint: 'retry in a second' });
    }
    pending++;
    // The slot is held until the TEE call itself settles, not just until the client is answered: a hung
    // quoting service must not pile up calls behind the timeout.
    const call = source(casReportData(Buffer.from(nonceHex, 'hex'), caSpki));
    void call.then(
      () => pending--,
      () => pending--,
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no report within ${SELF_ATTESTATION_TIMEOUT_MS} ms`)),
        SELF_ATTESTATION_TIMEOUT_MS,
      );
      timer.unref(); // the server keeps the process alive; a pending report must not
    });
    try {
      const evidence = await Promise.race([call, timeout]);
      return { ca_fingerprint: identity.fingerprint, evidence, binding };
    } catch (err) {
      throw new CasError(
        'CAS_TEE_UNAVAILABLE',
        `the CAS could not obtain evidence from its TEE (${err instanceof Error ? err.message : String(err)})`,
        { hint: 'retry; if it persists, the host quoting service is down', cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The CAS's own evidence from configfs-tsm (the same kernel interface `veil run` uses). In a TDX or SNP guest
 * the report names the VM (MRTD / launch measurement), which is then the CAS's identity: run it in a VM
 * image made for it.
 */
export function tsmSelfEvidence(opts: { fs: TsmFs; base: string }): SelfEvidenceSource {
  return async (reportData) => {
    const report = await tsmReport(reportData, { fs: opts.fs, base: opts.base });
    if (report.provider === 'tdx_guest') return { type: 'tdx', quote: report.outblob.toString('base64') };
    return {
      type: 'sev-snp',
      quote: report.outblob.toString('base64'),
      ...(report.auxblob ? { auxblob: report.auxblob.toString('base64') } : {}),
    };
  };
}

/** configfs-tsm when the machine has it (`VEIL_TSM_PATH` overrides where), otherwise none: no TEE. */
export async function findSelfEvidence(
  env: NodeJS.ProcessEnv,
  fs: TsmFs = nodeTsmFs,
): Promise<{ source?: SelfEvidenceSource; base: string }> {
  const base = env['VEIL_TSM_PATH'] || DEFAULT_TSM_BASE;
  return (await fs.exists(`${base}/report`)) ? { source: tsmSelfEvidence({ fs, base }), base } : { base };
}
