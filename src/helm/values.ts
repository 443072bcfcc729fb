/** The values of a mesh's chart: everything `helm install` needs, and what `--set` may override per service. */
export interface ChartValues {
  cas: { address: string; fingerprint: string | null };
  /**
   * What the runtimes send: `hardware` (TEE evidence from configfs-tsm; a pod without it does not start) or,
   * for meshes applied with `--mode debug` only, `simulation` (VEIL_EVIDENCE=simulation in every container).
   */
  evidence: 'hardware' | 'simulation';
  imagePullSecrets: Array<{ name: string }>;
  services: Record<string, ServiceValues>;
}

export interface ServiceValues {
  enabled: boolean;
  image: string;
  imagePullPolicy: string;
  replicaCount: number;
  /** SCONE_CONFIG_ID: `<namespace>/<service>/<program>`. */
  configId: string;
  port: number | null;
  /** Directories that receive secrets or decrypted code: memory-backed emptyDirs, so no capability is needed. */
  memoryVolumes: string[];
  /**
   * Extra Services named as the mesh knows the service (its name, the DNS names of its certificates: `redis`,
   * `api`), so peers reach it by the names its certificates carry, as `veil up` maps them locally.
   */
  aliases: string[];
  resources: Record<string, unknown>;
}

/** A mesh service as the chart needs it. */
export interface ChartService {
  name: string;
  image: string;
  configId: string;
  port: number | null;
  memoryVolumes: string[];
  aliases: string[];
}

export function chartValues(input: {
  casAddress: string;
  casFingerprint?: string | undefined;
  imagePullSecrets: string[];
  services: ChartService[];
  mode?: 'production' | 'debug';
}): ChartValues {
  return {
    cas: { address: input.casAddress, fingerprint: input.casFingerprint ?? null },
    evidence: input.mode === 'debug' ? 'simulation' : 'hardware',
    imagePullSecrets: input.imagePullSecrets.map((name) => ({ name })),
    services: Object.fromEntries(
      input.services.map((s) => [
        s.name,
        {
          enabled: true,
          image: s.image,
          imagePullPolicy: 'IfNotPresent',
          replicaCount: 1,
          configId: s.configId,
          port: s.port,
          memoryVolumes: [...s.memoryVolumes].sort(),
          aliases: [...s.aliases],
          resources: {},
        },
      ]),
    ),
  };
}
