import { HelmError, type HelmErrorCode } from './errors.js';

/**
 * The checks both charts make, written once: Veil's renderer throws a HelmError with the message and hint,
 * and the templates `fail` with `<message>; <hint>` (the same printf format), so Helm and Veil refuse alike.
 * Formats use only %q (a quoted string) and %v, and no double quote, so they sit in a Go string as they are.
 */
export interface Rule {
  code: HelmErrorCode;
  message: string;
  hint: string;
}

/** Service names (DNS-1035 labels: Kubernetes' rule for Services, the strictest of the objects named). */
export const LABEL = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
/**
 * A mesh service's name (DNS-1123 label, as the mesh manifests take it): it names a container and follows
 * `<release>-` in the object names, so it may start with a digit.
 */
export const SERVICE_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** Secret names (DNS-1123 subdomains). */
export const SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** Keys of a Secret's data. */
export const SECRET_KEY = '^[-._a-zA-Z0-9]+$';
/** Helm's own limit on release names, which leaves room for the suffixes (`-cas-headless`, `-<service>`). */
export const RELEASE_MAX = 53;
/**
 * Hosts that inside a pod are the pod itself (of `addressHost`: lower case, brackets, zone and trailing dot removed):
 * localhost and its subdomains, the names kubelet gives ::1 in a pod's /etc/hosts, 127.0.0.0/8 and 0.0.0.0/8
 * as a.b.c.d, and in IPv6 ::1 and :: in any spelling (only zeros and colons, then an optional 1) and IPv4-mapped
 * 127/8 and 0/8 (dotted or in hex groups). Numeric IPv4 in other forms is refused before (NUMERIC_HOST).
 */
export const LOOPBACK =
  '^(localhost|.*[.]localhost|ip6-localhost|ip6-loopback|127[.][0-9.]+|0[.][0-9.]+|[0:]*:[0:]*1?|' +
  '[0:]*:ffff:(127|0)[.][0-9.]+|[0:]*:ffff:(7f[0-9a-f]{2}|0{0,2}[0-9a-f]{1,2}):[0-9a-f]{1,4})$';
/**
 * An IPv4 address as the resolvers of Linux read it (inet_aton): one to four parts, each decimal, octal
 * (leading 0) or hex (0x), so `127.1`, `2130706433`, `0x7f.1` and `0` are addresses too.
 */
export const NUMERIC_HOST = '^(0x[0-9a-f]*|[0-9]+)([.](0x[0-9a-f]*|[0-9]+))*$';
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** a.b.c.d in decimal without leading zeros: the one numeric form the rules read (net.isIP's). */
export const CANONICAL_IPV4 = `^(${OCTET}[.]){3}${OCTET}$`;

export const RULES = {
  release: {
    code: 'HELM_RELEASE_NAME',
    message:
      'release name %q is refused: the charts name Services <release>-<service>, and Kubernetes takes only ' +
      'DNS-1035 labels (Helm allows at most 53 characters for a release)',
    hint: 'use lower-case letters, digits and dashes, starting with a letter, e.g. demo-1',
  },
  service: {
    code: 'HELM_NAME',
    message: 'service %q of the values is not a DNS-1123 label: its Deployment, container and Service take its name',
    hint: 'rename it in the mesh (lower-case letters, digits and dashes, at most 63)',
  },
  alias: {
    code: 'HELM_NAME',
    message: 'alias %q of service %q is not a DNS-1035 label, so no Service can carry it',
    hint: 'drop it from services.<name>.aliases or name it with lower-case letters, digits and dashes',
  },
  taken: {
    code: 'HELM_NAME_TAKEN',
    message: 'two Services of release %q would be named %q (services %q and %q)',
    hint: 'give the services distinct names and aliases (names are cut at 63 characters)',
  },
  otherRelease: {
    code: 'HELM_NAME_TAKEN',
    message:
      'Service %q (alias of service %q) already belongs to release %q in namespace %q: alias Services carry ' +
      'the names of the certificates unprefixed, so a namespace holds one release of a mesh',
    hint: 'install this release into a namespace of its own, or uninstall the other one',
  },
  loopback: {
    code: 'HELM_CAS_ADDRESS',
    message: 'cas.address %q is loopback: inside a pod that is the pod itself, not the CAS',
    hint: 'set cas.address to the CAS Service, e.g. --set cas.address=veil-cas.veil-system:8081',
  },
  numericHost: {
    code: 'HELM_CAS_ADDRESS',
    message:
      'cas.address %q is an IPv4 address not written as a.b.c.d: resolvers read forms like 127.1, 2130706433 ' +
      'or 0x7f.1 as 127.0.0.1 (loopback, inside a pod the pod itself)',
    hint: 'set cas.address to the CAS Service, e.g. veil-cas.veil-system:8081, or its address as a.b.c.d',
  },
  secretName: {
    code: 'HELM_NAME',
    message: '%v %q is not a Secret name Kubernetes accepts (a DNS-1123 subdomain)',
    hint: 'name the existing Secret as kubectl get secret shows it',
  },
  secretKey: {
    code: 'HELM_NAME',
    message: '%v %q is not a key a Secret can hold',
    hint: 'use letters, digits, dashes, dots and underscores, e.g. url',
  },
  sqliteReplicas: {
    code: 'HELM_VALUES',
    message: 'replicaCount %v with store.type sqlite: the SQLite store lives on one replica volume',
    hint: 'run several replicas with store.type=postgres (and store.postgres.existingSecret), or replicaCount=1',
  },
  storeType: {
    code: 'HELM_VALUES',
    message: 'store.type %q is neither sqlite nor postgres',
    hint: 'sqlite: one replica with a volume; postgres: N replicas sharing one database',
  },
  postgresSecret: {
    code: 'HELM_VALUES',
    message: 'store.type postgres needs store.postgres.existingSecret: the Secret holding the database URL',
    hint: 'kubectl create secret generic cas-postgres --from-literal=url=postgres://USER:PASSWORD@HOST:5432/DB',
  },
  postgresMasterKey: {
    code: 'HELM_VALUES',
    message: 'store.type postgres needs masterKey.existingSecret: every replica must hold the same master key',
    hint: 'openssl rand -hex 32 > master.key; kubectl create secret generic cas-master-key --from-file=master.key',
  },
  disruption: {
    code: 'HELM_VALUES',
    message: 'podDisruptionBudget sets both minAvailable and maxUnavailable: Kubernetes takes one of them',
    hint: 'unset one, e.g. --set podDisruptionBudget.maxUnavailable=null',
  },
} as const satisfies Record<string, Rule>;

/** Go's printf for the verbs the rules use: %q quotes as Go does for printable ASCII (as JSON does). */
export function format(text: string, args: ReadonlyArray<string | number>): string {
  let i = 0;
  return text.replace(/%[qv]/g, (verb) => {
    const arg = args[i++];
    return verb === '%q' ? JSON.stringify(String(arg)) : String(arg);
  });
}

export function refuse(rule: Rule, ...args: Array<string | number>): HelmError {
  return new HelmError(rule.code, format(rule.message, args), { hint: rule.hint });
}

/** The template's `fail` for a rule, with its printf arguments as template expressions. */
export function goFail(rule: Rule, ...args: string[]): string {
  return `{{- fail (printf "${rule.message}; ${rule.hint}" ${args.join(' ')}) }}`;
}

export function isLabel(name: unknown, max = 63, pattern = LABEL): boolean {
  return typeof name === 'string' && name.length <= max && new RegExp(pattern).test(name);
}

export function checkRelease(release: string): void {
  if (!isLabel(release, RELEASE_MAX)) throw refuse(RULES.release, release);
}

/**
 * The host of `host[:port]` as a resolver compares it: brackets, an IPv6 zone (`%eth0`) and one trailing dot
 * (the root of a fully qualified name) removed, lower case. GO_CAS_HOST does the same in the templates.
 */
export function addressHost(address: string): string {
  const host = address.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return host.toLowerCase().replace(/%.*$/, '').replace(/[.]$/, '');
}

/** Why a CAS address cannot serve pods (the first of the chart's checks that refuses it), or undefined. */
export function casAddressProblem(address: string): Rule | undefined {
  const host = addressHost(address);
  if (new RegExp(NUMERIC_HOST).test(host) && !new RegExp(CANONICAL_IPV4).test(host)) return RULES.numericHost;
  if (new RegExp(LOOPBACK).test(host)) return RULES.loopback;
  return undefined;
}

/** Whether the address reaches the machine itself: a loopback name or address, numeric forms included. */
export function isLoopback(address: string): boolean {
  const host = addressHost(address);
  if (new RegExp(LOOPBACK).test(host)) return true;
  const value = inetAton(host);
  return value !== undefined && (value >>> 24 === 127 || value >>> 24 === 0);
}

/** The IPv4 address inet_aton reads in `host`, or undefined when it reads none. */
function inetAton(host: string): number | undefined {
  const parts = host.split('.').map((p) => {
    if (/^0x[0-9a-f]*$/.test(p)) return p.length === 2 ? 0 : Number.parseInt(p.slice(2), 16);
    if (/^0[0-7]*$/.test(p)) return Number.parseInt(p, 8);
    return /^[1-9][0-9]*$/.test(p) ? Number(p) : Number.NaN;
  });
  if (parts.length > 4 || parts.some((n) => !Number.isFinite(n))) return undefined;
  const last = parts.pop()!;
  if (parts.some((n) => n > 255) || last >= 2 ** (8 * (4 - parts.length))) return undefined;
  return parts.reduce((v, n, i) => v + n * 2 ** (8 * (3 - i)), last);
}

/** Template lines that set `$cas` to the host of .Values.cas.address, as addressHost does. */
export const GO_CAS_HOST = `{{- $cas := regexReplaceAll ":[0-9]+$" (toString .Values.cas.address) "" }}
{{- $cas = regexReplaceAll \`^\\[|\\]$\` $cas "" }}
{{- $cas = regexReplaceAll "[.]$" (regexReplaceAll "%.*$" (lower $cas) "") "" }}`;

/** Template lines that fail unless `.Release.Name` passes checkRelease. */
export const GO_CHECK_RELEASE = `{{- if or (gt (len .Release.Name) ${RELEASE_MAX}) (not (regexMatch \`${LABEL}\` .Release.Name)) }}
${goFail(RULES.release, '.Release.Name')}
{{- end }}`;
