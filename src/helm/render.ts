import { RULES, SERVICE_LABEL, casAddressProblem, checkRelease, isLabel, refuse } from './rules.js';
import type { ChartValues, ServiceValues } from './values.js';

/** What the cluster holds, as the templates' `lookup` sees it: the release owning a Service, if any. */
export interface ClusterView {
  namespace: string;
  serviceOwner(name: string): string | undefined;
}

/** `helm template` has no cluster: its `lookup` finds nothing. */
const NO_CLUSTER: ClusterView = { namespace: 'default', serviceOwner: () => undefined };

/**
 * What `helm template <release>` renders from the chart's templates and `values` (see templates.ts), or the
 * HelmError its checks fail with. Values may come from user files: a null `aliases` or `resources` is empty.
 */
export function renderManifests(
  values: ChartValues,
  release: string,
  cluster: ClusterView = NO_CLUSTER,
): Array<Record<string, unknown>> {
  const services = enabled(values);
  check(values, release, services, cluster);
  return services.flatMap(([name, s]) => [
    deployment(values, release, name, s),
    ...(s.port ? serviceNames(release, name, s).map((n) => service(release, name, s.port!, n)) : []),
  ]);
}

function enabled(values: ChartValues): Array<[string, ServiceValues]> {
  return Object.entries(values.services ?? {})
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .filter((entry): entry is [string, ServiceValues] => Boolean(entry[1]?.enabled));
}

/** The checks of templates.ts's `veil.checks`, in its order, so the first refusal is the same one. */
function check(values: ChartValues, release: string, services: Array<[string, ServiceValues]>, cluster: ClusterView) {
  checkRelease(release);
  const cas = String(values.cas?.address);
  const problem = casAddressProblem(cas);
  if (problem) throw refuse(problem, cas);
  const taken = new Map<string, string>();
  for (const [name, s] of services) {
    if (!isLabel(name, 63, SERVICE_LABEL)) throw refuse(RULES.service, name);
    if (!s.port) continue;
    serviceNames(release, name, s).forEach((n, i) => {
      if (i > 0 && !isLabel(n)) throw refuse(RULES.alias, n, name);
      const other = taken.get(n);
      if (other !== undefined) throw refuse(RULES.taken, release, n, other, name);
      taken.set(n, name);
      const owner = i > 0 ? cluster.serviceOwner(n) : undefined;
      if (owner && owner !== release) throw refuse(RULES.otherRelease, n, name, owner, cluster.namespace);
    });
  }
}

/** The Service under the release's name for the service, then one per alias (the names its certificates carry). */
/** The alias Services (unprefixed names) the values render: where two releases of a namespace can collide. */
export function aliasServices(values: ChartValues): string[] {
  return enabled(values).flatMap(([, s]) => (s.port ? (s.aliases ?? []).map(String) : []));
}

/**
 * What -o yaml says next to the manifests: only `helm install` (its `lookup`) sees another release's alias
 * Service; rendered without a cluster (helm template, --dry-run, GitOps renderers, these manifests) nothing does.
 */
export function aliasCollisionNote(aliases: string[], release: string): string {
  const names = aliases.join(' ');
  return (
    `alias Services ${aliases.join(', ')} are not prefixed by the release: applied with kubectl (or rendered by ` +
    'helm template, --dry-run or a GitOps tool, where the chart cannot look) into a namespace where another ' +
    'release owns one, they take it over unchecked. Give each release its own namespace, and check first: ' +
    `kubectl get service ${names} -L app.kubernetes.io/instance (each must be absent or show ${release})`
  );
}

function serviceNames(release: string, name: string, s: ServiceValues): string[] {
  return [fullName(release, name), ...(s.aliases ?? []).map(String)];
}

/** Helm's `trunc 63 | trimSuffix "-"`: one dash goes, as there. */
function fullName(release: string, name: string): string {
  const cut = `${release}-${name}`.slice(0, 63);
  return cut.endsWith('-') ? cut.slice(0, -1) : cut;
}

function labels(release: string, name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': release };
}

function deployment(values: ChartValues, release: string, name: string, s: ServiceValues): Record<string, unknown> {
  const env = [
    { name: 'SCONE_CONFIG_ID', value: s.configId },
    { name: 'SCONE_CAS_ADDR', value: values.cas.address },
    ...(values.cas.fingerprint ? [{ name: 'VEIL_CAS_FINGERPRINT', value: values.cas.fingerprint }] : []),
    ...(values.evidence === 'simulation' ? [{ name: 'VEIL_EVIDENCE', value: 'simulation' }] : []),
  ];
  const memory = s.memoryVolumes ?? [];
  const container = {
    name,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    env,
    ...(s.port ? { ports: [{ name: 'service', containerPort: s.port }] } : {}),
    ...(memory.length ? { volumeMounts: memory.map((mountPath, i) => ({ name: `memory-${i}`, mountPath })) } : {}),
    resources: s.resources ?? {},
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: fullName(release, name),
      labels: { ...labels(release, name), 'app.kubernetes.io/managed-by': 'Helm' },
    },
    spec: {
      replicas: s.replicaCount,
      selector: { matchLabels: labels(release, name) },
      template: {
        metadata: { labels: labels(release, name) },
        spec: {
          ...(values.imagePullSecrets?.length ? { imagePullSecrets: values.imagePullSecrets } : {}),
          containers: [container],
          ...(memory.length
            ? { volumes: memory.map((_, i) => ({ name: `memory-${i}`, emptyDir: { medium: 'Memory' } })) }
            : {}),
        },
      },
    },
  };
}

function service(release: string, name: string, port: number, serviceName: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName, labels: { ...labels(release, name), 'app.kubernetes.io/managed-by': 'Helm' } },
    spec: {
      type: 'ClusterIP',
      selector: labels(release, name),
      ports: [{ name: 'service', port, targetPort: 'service' }],
    },
  };
}
