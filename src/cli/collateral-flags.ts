/**
 * The collateral flags without the verifiers behind them: `veil cas serve` declares them in its spec and loads
 * collateral-options.ts (Intel's and AMD's collateral code, pkijs, undici) only when one is given, so that a
 * CAS started without collateral does not pay for those modules on its way to ready.
 */
import type { CollateralProvider } from '../attestation/types.js';

export const COLLATERAL_OPTIONS = {
  collateral: {
    type: 'string',
    multiple: true,
    value: 'F|DIR',
    description: 'collateral files (PCS responses, CRLs, issuer chains, VCEK/ASK/ARK), recognised by content',
  },
  'pcs-url': { type: 'string', value: 'URL', description: 'Intel PCS or a PCCS to fetch SGX/TDX collateral from' },
  'kds-url': { type: 'string', value: 'URL', description: 'AMD KDS to fetch SEV-SNP certificates and CRLs from' },
  'collateral-max-age': {
    type: 'string',
    value: 'DURATION',
    description: 'how long fetched collateral is cached (3600, 60m, 1h; default 1h)',
  },
} as const;

export interface CollateralFlags {
  collateral?: string[] | undefined;
  'pcs-url'?: string | undefined;
  'kds-url'?: string | undefined;
  'collateral-max-age'?: string | undefined;
}

/** Whether any collateral flag is set: without one, collateralFromFlags answers undefined and checks nothing. */
export function collateralGiven(flags: CollateralFlags): boolean {
  return (
    (flags.collateral?.length ?? 0) > 0 ||
    flags['pcs-url'] !== undefined ||
    flags['kds-url'] !== undefined ||
    flags['collateral-max-age'] !== undefined
  );
}

/** Collateral code (Intel's, AMD's, their fetchers) is loaded only when a collateral flag names some. */
export async function collateralOf(
  flags: CollateralFlags,
  opts: { warm?: boolean } = {},
): Promise<CollateralProvider | undefined> {
  if (!collateralGiven(flags)) return undefined;
  return (await import('./collateral-options.js')).collateralFromFlags(flags, opts);
}
