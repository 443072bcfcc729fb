import type { Finding, PathSegment } from '../issues.js';
import { countYamlNodes, SESSION_LIMITS } from './limits.js';
import { FRAGMENT_REF, REDACTED, type WrittenSession } from './schema.js';

/**
 * Where SCONE lets a config-fragment stand (reference §4.3, §4.6): a whole section (`section`), or an entry of
 * a list (`items`), whose fragment, when it is a list, is merged into it. `each`: every element of a list of
 * maps (services). Nothing else is looked at: a placeholder anywhere else is text, as before.
 */
interface Site {
  section?: boolean;
  /** `open`: an entry may also be another secret's placeholder, judged where it is used (platforms, ACLs). */
  items?: 'fragments' | 'open';
  each?: Site;
  children?: Record<string, Site>;
}

const ENTRIES: Site = { items: 'open' };
const SITES: Site = {
  children: {
    access_policy: { section: true, children: { read: ENTRIES, update: ENTRIES, create_sessions: ENTRIES } },
    services: { each: { children: { attestation: { section: true, items: 'fragments' }, platforms: ENTRIES } } },
    security: {
      section: true,
      children: {
        attestation: {
          section: true,
          children: { tolerate: { items: 'fragments' }, ignore_advisories: ENTRIES },
        },
      },
    },
  },
};

/** A fragment's value as the session knows it: given here, imported (known to the CAS), or not known yet. */
export type FragmentValue = { known: true; value: unknown } | { known: false };

export interface FillOptions {
  /** The value of an imported config-fragment, by its local name; undefined when it is not known. */
  imported?: ((name: string) => unknown) | undefined;
  /**
   * `refuse`: an imported fragment whose value is not known is an error (the CAS, which fetched them all).
   * `omit`: its place is left out, to check the rest offline (never used to judge anything).
   */
  unknownImports: 'refuse' | 'omit';
}

export interface Filled {
  /** The session with its fragments filled in, to be checked by the session schema. */
  value: unknown;
  /** The fragments filled in, by name (empty: the session is as written). */
  used: string[];
  findings: Finding[];
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const OMIT = Symbol('omit');

/** Fills every config-fragment of the session in once: a fragment's own placeholders are not filled again. */
export function fillFragments(session: WrittenSession, opts: FillOptions): Filled {
  const fragments = fragmentsOf(session, opts);
  const kinds = new Map((session.secrets ?? []).map((s) => [s.name, s.kind ?? 'imported']));
  // Counting the session costs a walk of it: not needed when it has no fragment to fill.
  const budget = fragments.size === 0 ? 0 : SESSION_LIMITS.yamlNodes - countYamlNodes(session);
  const ctx: Ctx = { fragments, kinds, used: new Set(), findings: [], opts, budget, nodes: new Map() };
  const value = fill(session, SITES, [], ctx);
  if (ctx.used.size > 0) ctx.findings.push(...nested(value, ctx), ...sizeFindings(ctx));
  return { value, used: [...ctx.used], findings: ctx.findings };
}

interface Ctx {
  fragments: Map<string, FragmentValue>;
  /** Every secret's kind, by name ('imported' for an import that does not say). */
  kinds: Map<string, string>;
  used: Set<string>;
  findings: Finding[];
  opts: FillOptions;
  /**
   * YAML nodes the filled session may still gain: each placement is paid for before its copy is made, and
   * once it is overdrawn nothing more is copied (one fragment named in many places could otherwise take
   * seconds of the event loop to copy before any limit is looked at).
   */
  budget: number;
  /** Each fragment's node count, counted once (up to the limit). */
  nodes: Map<string, number>;
  /** Only which fragments are named matters (the check for fragments inside fragments): nothing is copied. */
  probe?: boolean;
}

function fragmentsOf(session: WrittenSession, opts: FillOptions): Map<string, FragmentValue> {
  const out = new Map<string, FragmentValue>();
  for (const s of session.secrets ?? []) {
    // An imported fragment says so (`kind: config-fragment`): the CAS fetches it before judging the session.
    if (s.kind !== 'config-fragment') continue;
    if (s.import) {
      const value = opts.imported?.(s.name);
      out.set(s.name, value === undefined ? { known: false } : { known: true, value });
    } else if (s.value === REDACTED) out.set(s.name, { known: false });
    else if (s.value !== undefined) out.set(s.name, { known: true, value: s.value });
  }
  return out;
}

function fill(value: unknown, site: Site, path: PathSegment[], ctx: Ctx): unknown {
  if (site.section) {
    const filled = fragmentAt(value, path, ctx, true);
    if (filled !== undefined) return filled;
  }
  if (Array.isArray(value)) {
    if (site.items) return value.flatMap((item, i) => entries(item, [...path, i], ctx, site.items === 'fragments'));
    if (site.each) return value.map((item, i) => fill(item, site.each!, [...path, i], ctx));
    return value;
  }
  if (!isMap(value) || !site.children) return value;
  let out: Record<string, unknown> | undefined;
  for (const [key, child] of Object.entries(site.children)) {
    if (!Object.hasOwn(value, key) || value[key] === undefined) continue;
    const next = fill(value[key], child, [...path, key], ctx);
    if (next === value[key]) continue;
    out ??= { ...value };
    if (next === OMIT) delete out[key];
    else out[key] = next;
  }
  return out ?? value;
}

/** A list entry: a fragment that is a list is merged into the list, any other value takes the entry's place. */
function entries(item: unknown, path: PathSegment[], ctx: Ctx, only: boolean): unknown[] {
  const filled = fragmentAt(item, path, ctx, only);
  if (filled === undefined) return [item];
  if (filled === OMIT) return [];
  return Array.isArray(filled) ? filled : [filled];
}

/**
 * The fragment `value` names, OMIT for an imported one not known (in `omit` mode), or undefined when `value`
 * names no config-fragment (a placeholder of another kind is left as it is, for the rules of its place).
 */
function fragmentAt(value: unknown, path: PathSegment[], ctx: Ctx, fragmentsOnly: boolean): unknown {
  if (typeof value !== 'string') return undefined;
  const name = FRAGMENT_REF.exec(value)?.[1];
  if (name === undefined) return undefined;
  const fragment = ctx.fragments.get(name);
  if (fragment === undefined) {
    const kind = ctx.kinds.get(name);
    if (kind === undefined) ctx.findings.push({ path, message: `no secret named '${name}' (in ${value})` });
    else if (fragmentsOnly && kind !== 'config-fragment')
      ctx.findings.push({ path, message: `'${name}' is ${kindName(kind)}: only a config-fragment can stand here` });
    return undefined;
  }
  if (fragment.known) {
    ctx.used.add(name);
    if (ctx.probe) return undefined;
    if (!pay(name, fragment.value, ctx)) return OMIT;
    return structuredClone(fragment.value);
  }
  if (ctx.opts.unknownImports === 'refuse') {
    ctx.findings.push({ path, message: `the value of config-fragment '${name}' is not available` });
  }
  return OMIT;
}

function kindName(kind: string): string {
  return kind === 'imported' ? 'an import without kind: config-fragment' : `a ${kind} secret`;
}

/**
 * Takes what a copy of the fragment adds (its nodes, less the placeholder's) from the budget; false once the
 * budget is overdrawn, so that the copy is not made. A list merged into a list adds one node less (its own
 * list node goes): counting it errs on the safe side, by one node per such placement.
 */
function pay(name: string, value: unknown, ctx: Ctx): boolean {
  let nodes = ctx.nodes.get(name);
  if (nodes === undefined) {
    nodes = countYamlNodes(value);
    ctx.nodes.set(name, nodes);
  }
  ctx.budget -= nodes - 1;
  return ctx.budget >= 0;
}

/** Fragments are filled in once: a placeholder of a fragment left inside a filled one would mean nothing. */
function nested(value: unknown, ctx: Ctx): Finding[] {
  const opts: FillOptions = { ...ctx.opts, unknownImports: 'omit' };
  const left: Ctx = { ...ctx, used: new Set(), findings: [], opts, probe: true };
  fill(value, SITES, [], left);
  return [...left.used].map((name) => ({
    path: [],
    message: `config-fragment '${name}' is named inside another config-fragment; fragments are filled in once`,
  }));
}

/**
 * One fragment may be named in many places: the filled-in session must stay within the YAML node limit. The
 * budget counts it (at most one node over per list merged), so an overdrawn budget is a session too large.
 */
function sizeFindings(ctx: Ctx): Finding[] {
  const max = SESSION_LIMITS.yamlNodes;
  if (ctx.budget >= 0) return [];
  return [{ path: [], message: `with its config-fragments filled in, the session has more than ${max} YAML nodes` }];
}
