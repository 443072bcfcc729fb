/**
 * The synthetic Turin hierarchy the Turin test files share (turin*.test.ts): each calls useTurinHierarchy().
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { pinRoot, spkiSha256, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import type { SnpProduct } from './report.js';
import {
  NOW,
  buildArk,
  buildAsk,
  buildVcek,
  p384,
  reportBody,
  rsa4096,
  signReport,
  type KeyPair,
  type ReportSpec,
  type VcekSpec,
} from './synthetic.js';
import { verifySnpReportAgainst } from './verify.js';

/**
 * A complete synthetic AMD-like hierarchy for Turin, with real cryptography: an RSA-4096 self-signed ARK-Turin
 * (RSASSA-PSS/SHA-384, salt 48, as AMD's), an SEV-Turin ASK it signs, SEV-VCEK certificates (EC P-384) the ASK
 * signs, carrying the Turin extensions encoded exactly as in the real Turin VCEK (virtee vcek_turin.der), Turin
 * SNP reports signed by the VCEK key, and ARK-signed CRLs. The structures are built with pkijs/asn1js; every
 * signature is made with node:crypto over the DER pkijs encodes. AMD has shipped no Turin report, so this is
 * the only end-to-end coverage of the Turin paths (TCB layout with FMC, 8-byte hwID, fmcSPL, CPUID 0x1A).
 */

// ---- openssl ---------------------------------------------------------------------------------------------------

let tmp: string | undefined;
export function file(name: string, data: string | Buffer): string {
  tmp ??= mkdtempSync(join(tmpdir(), 'veil-turin-'));
  const path = join(tmp, name);
  writeFileSync(path, data);
  return path;
}
export function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
/** openssl's exit status and its stdout and stderr together (openssl crl prints "verify OK" on stderr). */
export function opensslStatus(...args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

// ---- the hierarchy ------------------------------------------------------------------------------------------------

export interface Hierarchy {
  arkKey: KeyPair;
  askKey: KeyPair;
  /** Another RSA-4096 key: an ARK-Turin with the same subject, a CRL signer that is not the ARK. */
  foreignKey: KeyPair;
  vcekKey: KeyPair;
  otherEcKey: KeyPair;
  ark: Buffer;
  ask: Buffer;
  vcek: Buffer;
  root: PinnedRoot;
  roots: Record<SnpProduct, PinnedRoot>;
  report: Buffer;
}

/** The hierarchy of the test file that called useTurinHierarchy() (made in its `before`). */
export let h: Hierarchy;

/** Makes the hierarchy before the calling test file's tests, and removes the openssl files after them. */
export function useTurinHierarchy(): void {
  before(makeHierarchy);
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
}

async function makeHierarchy(): Promise<void> {
  const [arkKey, askKey, foreignKey, vcekKey, otherEcKey] = await Promise.all([
    rsa4096(),
    rsa4096(),
    rsa4096(),
    p384(),
    p384(),
  ]);
  const ark = buildArk(arkKey);
  const ask = buildAsk(askKey.publicKey, arkKey);
  const vcek = buildVcek(vcekKey.publicKey, askKey.privateKey);
  const arkCert = new X509Certificate(ark);
  const root = pinRoot('the synthetic ARK-Turin', arkCert.toString(), spkiSha256(arkCert.publicKey));
  const roots = { Milan: AMD_ARKS.Milan, Genoa: AMD_ARKS.Genoa, Turin: root };
  h = {
    arkKey,
    askKey,
    foreignKey,
    vcekKey,
    otherEcKey,
    ark,
    ask,
    vcek,
    root,
    roots,
    report: signReport(reportBody(), vcekKey.privateKey),
  };
}

export const verifyT = (report: Buffer, extra: Record<string, unknown> = {}, certs?: (Buffer | string)[]) =>
  verifySnpReportAgainst(report, { now: NOW, certs: (certs ?? [h.vcek, h.ask, h.ark]) as Buffer[], ...extra }, h.roots);
/** A report from `spec`, signed by the VCEK key. */
export const report = (spec: ReportSpec = {}, key?: KeyObject) =>
  signReport(reportBody(spec), key ?? h.vcekKey.privateKey);
/** Another VCEK, signed by the synthetic ASK, for the same VCEK key. */
export const vcekWith = (v: VcekSpec) => buildVcek(h.vcekKey.publicKey, h.askKey.privateKey, v);
