import { posix } from 'node:path';
import type { MeshPlan, ParsedMesh } from '../manifests/index.js';
import { isLoopback } from './rules.js';
import type { ChartService } from './values.js';

/**
 * Each mesh service as the chart runs it: its image pinned by digest when it was built, its config ID, the
 * port it serves (`SERVICE_PORT`, `<NAME>_PORT` or `APP_SERVICE_PORT` from the mesh env, as SCONE's charts
 * use them), and the directories that must be memory volumes: those of its injection files and, when its
 * code is shielded, its working directory (the runtime decrypts into it).
 */
export function chartServices(mesh: ParsedMesh, plan: MeshPlan): ChartService[] {
  return plan.services.map((p) => {
    const s = mesh.services.find((x) => x.name === p.name)!;
    const b = s.bundle;
    const dirs = new Set(b.injection_files.map((f) => posix.dirname(f.path)));
    if (b.shield) dirs.add(b.pwd);
    const portText = ['SERVICE_PORT', `${p.name.toUpperCase().replace(/-/g, '_')}_PORT`, 'APP_SERVICE_PORT']
      .map((v) => s.variables.get(v))
      .find((v) => v !== undefined);
    const port = portText !== undefined && /^\d+$/.test(portText) ? Number(portText) : null;
    const aliases = p.names.filter((n) => /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(n));
    return {
      name: p.name,
      image: b.built ? `${b.built.reference}@${b.built.digest}` : b.image,
      configId: p.configId,
      port,
      memoryVolumes: [...dirs],
      aliases,
    };
  });
}

/** SCONE meshes name the pull secret with the `imagePullSecrets` variable (global or helm env). */
export function pullSecrets(mesh: ParsedMesh): string[] {
  const value = mesh.services[0]?.variables.get('imagePullSecrets');
  return value
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : [];
}

/** The CAS chart's Service for its default release (`veil`), which a mesh in the CAS's namespace reaches. */
export const DEFAULT_CAS_SERVICE = 'veil-cas';

/**
 * SCONE_CAS_ADDR for the pods. A loopback CAS (a mesh written for one machine, like the example's
 * `localhost:8081`) is the pod itself inside a pod: the chart gets the CAS chart's Service instead, with the
 * same port, and a warning saying so (the chart refuses a loopback address given with --set).
 */
export function inClusterCasAddress(address: string): { address: string; warning?: string } {
  if (!isLoopback(address)) return { address };
  const port = /:([0-9]+)$/.exec(address)?.[1] ?? '8081';
  const rewritten = `${DEFAULT_CAS_SERVICE}:${port}`;
  return {
    address: rewritten,
    warning:
      `the mesh's CAS address ${address} is loopback, which inside a pod is the pod itself: the chart uses ` +
      `${rewritten} (the Service of 'veil cas chart' installed as release veil in the same namespace); ` +
      'set another with helm --set cas.address=HOST:PORT',
  };
}
