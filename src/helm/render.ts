import type { ChartValues, ServiceValues } from './values.js';

/** What `helm template <release>` renders from the chart's templates and `values` (see templates.ts). */
export function renderManifests(values: ChartValues, release: string): Array<Record<string, unknown>> {
  return Object.entries(values.services)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .filter(([, s]) => s.enabled)
    .flatMap(([name, s]) => [
      deployment(values, release, name, s),
      ...(s.port
        ? [
            service(release, name, s.port, fullName(release, name)),
            ...s.aliases.map((alias) => service(release, name, s.port!, alias)),
          ]
        : []),
    ]);
}

function fullName(release: string, name: string): string {
  return `${release}-${name}`.slice(0, 63).replace(/-+$/, '');
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
  const container = {
    name,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    env,
    ...(s.port ? { ports: [{ name: 'service', containerPort: s.port }] } : {}),
    ...(s.memoryVolumes.length
      ? { volumeMounts: s.memoryVolumes.map((mountPath, i) => ({ name: `memory-${i}`, mountPath })) }
      : {}),
    resources: s.resources,
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
          ...(values.imagePullSecrets.length ? { imagePullSecrets: values.imagePullSecrets } : {}),
          containers: [container],
          ...(s.memoryVolumes.length
            ? { volumes: s.memoryVolumes.map((_, i) => ({ name: `memory-${i}`, emptyDir: { medium: 'Memory' } })) }
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
