import { collateralProvider, DEFAULT_COLLATERAL_MAX_AGE_MS } from '../attestation/collateral.js';
import { intelCollateralFromFiles, intelCollateralFromPcs } from '../attestation/intel/index.js';
import { amdCollateralFromFiles, amdCollateralFromKds } from '../attestation/snp/index.js';
import type { AmdSource, CollateralProvider, IntelSource } from '../attestation/types.js';
import type { CollateralFlags } from './collateral-flags.js';
import { usage } from './errors.js';

export { COLLATERAL_OPTIONS, collateralGiven, type CollateralFlags } from './collateral-flags.js';

/**
 * Files and directories first (air-gapped operation), then Intel PCS / a PCCS and AMD KDS when their URLs are
 * given. Nothing is fetched unless a URL is named: a CAS never reaches out on its own.
 */
export function collateralFromFlags(
  flags: CollateralFlags,
  opts: { warm?: boolean } = {},
): CollateralProvider | undefined {
  const intel: IntelSource[] = [];
  const amd: AmdSource[] = [];
  if (flags.collateral?.length) {
    intel.push(intelCollateralFromFiles(flags.collateral));
    const files = amdCollateralFromFiles(flags.collateral);
    amd.push((r) => files.amd(r));
  }
  if (flags['pcs-url']) intel.push(intelCollateralFromPcs({ baseUrl: httpsUrl(flags['pcs-url'], '--pcs-url') }));
  if (flags['kds-url']) {
    const kds = amdCollateralFromKds({ baseUrl: httpsUrl(flags['kds-url'], '--kds-url') });
    // A CAS fetches AMD's chains and CRLs at start: then it can check revocation even if KDS later rate-limits it.
    if (opts.warm) void kds.warm?.();
    amd.push((r) => kds.amd(r));
  }
  if (intel.length === 0 && amd.length === 0) return undefined;
  return collateralProvider({ intel, amd, maxAgeMs: maxAge(flags['collateral-max-age']) });
}

function httpsUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage(`${flag} '${value}' is not a URL`, `e.g. ${flag} https://api.trustedservices.intel.com`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw usage(
      `${flag} must be https (plain http only on loopback)`,
      'collateral is signed, but a network attacker could still withhold or swap it',
    );
  }
  return value.replace(/\/+$/, '');
}

/** `--collateral-max-age 3600` (seconds) or `1h`, `30m`. */
function maxAge(value: string | undefined): number {
  if (value === undefined) return DEFAULT_COLLATERAL_MAX_AGE_MS;
  const match = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!match) throw usage(`--collateral-max-age '${value}' is not a duration`, 'e.g. 3600, 60m, 1h or 1d');
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit * 1000;
}
