import { posix } from 'node:path';
import type { MeshPlan, ParsedMesh } from '../manifests/index.js';
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
