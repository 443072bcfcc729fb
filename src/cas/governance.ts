import type { AccessEntry, LeafEntry } from '../policy/index.js';
import { sameKeyHash, type ClientIdentity } from './identity-of.js';

/**
 * Governance (session language §4.1): whether a permission list admits a request. Pure: signatures were
 * verified before (signatures.ts), and the session that decides supplies its creator and its certificates.
 * The list is an OR of its entries; `require-all` needs every member, `require-at-least-N` N distinct identities
 * (key hashes) among its members, so one key that is both a TLS client and a signer counts once.
 */

/** Who asks: the TLS client, and the signer keys (key hashes) whose signatures over this very upload verified. */
export interface Requester {
  client: ClientIdentity | undefined;
  signers: readonly string[];
}

/** What the deciding session supplies: its creator's key hash and the key hashes of its certificate secrets. */
export interface Owner {
  creatorKeyHash(): string;
  certificateKeyHash(name: string): string | undefined;
}

/** Default deny: NONE refuses everyone, ANY admits everyone, otherwise one entry must be satisfied. */
export function admits(entries: readonly AccessEntry[], requester: Requester, owner: Owner): boolean {
  if (entries.some((e) => e.kind === 'none')) return false;
  if (entries.some((e) => e.kind === 'any')) return true;
  return entries.some((entry) => entrySatisfied(entry, requester, owner));
}

function entrySatisfied(entry: AccessEntry, requester: Requester, owner: Owner): boolean {
  if (entry.kind === 'group') return groupState(entry, requester, owner).missing === 0;
  if (entry.kind === 'any' || entry.kind === 'none' || entry.kind === 'nobody') return false;
  return leafKey(entry, requester, owner) !== undefined;
}

/** The key hash that satisfies a plain entry for this request, or undefined. */
function leafKey(leaf: LeafEntry, requester: Requester, owner: Owner): string | undefined {
  if (leaf.kind === 'signer')
    return requester.signers.some((s) => sameKeyHash(s, leaf.keyHash)) ? leaf.keyHash : undefined;
  const client = requester.client;
  if (!client) return undefined;
  const want =
    leaf.kind === 'creator'
      ? owner.creatorKeyHash()
      : leaf.kind === 'key'
        ? leaf.keyHash
        : owner.certificateKeyHash(leaf.name);
  return want !== undefined && sameKeyHash(want, client.keyHash) ? want.toLowerCase() : undefined;
}

type Group = Extract<AccessEntry, { kind: 'group' }>;

interface GroupState {
  /** Members (require-all) or distinct identities (require-at-least-N) still needed. */
  missing: number;
  /** Key hashes of the signer members not satisfied. */
  unsignedSigners: string[];
  /** Members that are client identities (certificates, key hashes, CREATOR, secrets) not satisfied. */
  otherMissing: number;
}

function groupState(group: Group, requester: Requester, owner: Owner): GroupState {
  const keys = group.members.map((m) => leafKey(m, requester, owner));
  const unsatisfied = group.members.filter((_, i) => keys[i] === undefined);
  const have = group.label === 'require-all' ? keys.length - unsatisfied.length : distinct(keys);
  return {
    missing: Math.max(0, group.need - have),
    unsignedSigners: unsatisfied.flatMap((m) => (m.kind === 'signer' ? [m.keyHash] : [])),
    otherMissing: unsatisfied.filter((m) => m.kind !== 'signer').length,
  };
}

function distinct(keys: Array<string | undefined>): number {
  return new Set(keys.filter((k): k is string => k !== undefined)).size;
}

/** Every signer key a list names (plain and in groups): the only signatures worth verifying for it. */
export function namedSigners(entries: readonly AccessEntry[]): Map<string, Extract<LeafEntry, { kind: 'signer' }>> {
  const out = new Map<string, Extract<LeafEntry, { kind: 'signer' }>>();
  for (const entry of entries) {
    const leaves = entry.kind === 'group' ? entry.members : [entry];
    for (const leaf of leaves) if (leaf.kind === 'signer') out.set(leaf.keyHash, leaf);
  }
  return out;
}

/**
 * Why a request falls short, for a list that names signers: per alternative, how many signatures are missing
 * and from which signers (key hashes: public). Undefined when no entry involves a signer (a plain refusal).
 */
export function shortfall(entries: readonly AccessEntry[], requester: Requester, owner: Owner): string | undefined {
  const parts: string[] = [];
  for (const entry of entries) {
    if (entry.kind === 'signer') parts.push(`a signature by signer ${entry.keyHash}`);
    if (entry.kind === 'group') {
      const part = describeGroup(entry, groupState(entry, requester, owner));
      if (part) parts.push(part);
    }
  }
  return parts.length > 0 ? parts.join('; or ') : undefined;
}

function describeGroup(group: Group, state: GroupState): string | undefined {
  if (state.unsignedSigners.length === 0) return undefined;
  const plural = state.missing === 1 ? '' : 's';
  const others =
    state.otherMissing > 0 ? ` (or of its ${state.otherMissing} client identities, uploading with one)` : '';
  const have = group.label === 'require-all' ? group.members.length - state.missing : group.need - state.missing;
  return (
    `${group.label}: ${state.missing} more signature${plural} needed (${have} of ${group.need} present), ` +
    `from signers ${state.unsignedSigners.join(', ')}${others}`
  );
}
