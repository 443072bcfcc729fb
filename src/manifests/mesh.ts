import { onlyUnsupported } from '../issues.js';
import { TOLERATIONS } from '../policy/schema.js';
import { bundlesByImage, type Bundle } from './bundle.js';
import { located, readYaml, validateShape, type Finding, type Source } from './source.js';
import { meshManifestSchema, type MeshManifest } from './mesh-schema.js';
import { ManifestError } from './errors.js';
import { sconeImage } from './scone-images.js';

/** One service of a mesh, joined with the bundle its image names. */
export interface MeshService {
  name: string;
  index: number;
  bundle: Bundle;
  bundleDir: string;
  /** Variables for this service, by priority: its own env, then helm, then global, then built-ins. */
  variables: Map<string, string>;
  /** Services whose secrets this one imports: they start first. */
  dependsOn: string[];
}

export interface ParsedMesh {
  manifest: MeshManifest;
  source: Source;
  file: string;
  namespace: string;
  services: MeshService[];
  /** Which service defines each global secret. */
  definers: Map<string, string>;
  tolerate: string[];
}

/** Parses a mesh manifest and joins it with the service bundles under `target`: shape first, then references. */
export function parseMeshManifest(
  text: string,
  file: string,
  target: string,
  opts: { release?: string | undefined; namespace?: string | undefined } = {},
): ParsedMesh {
  const source = readYaml(text, file);
  const manifest = validateShape(meshManifestSchema, source, file);
  const bundles = bundlesByImage(target);
  // --policy-namespace overrides policy.namespace, as in SCONE's scone_mesh.
  const namespace = opts.namespace ?? manifest.policy.namespace;
  if (!/^[A-Za-z0-9_\-.~]{1,128}$/.test(namespace)) {
    throw new ManifestError(
      'MANIFEST_SHAPE',
      [
        {
          path: 'policy.namespace',
          message: `--policy-namespace '${namespace}' must be 1–128 characters of A-Z a-z 0-9 _ - . ~`,
        },
      ],
      file,
    );
  }
  const findings: Finding[] = [];
  const names = manifest.services.map((s, i) => serviceName(s.name, s.image, i, findings));
  const services = manifest.services.flatMap((s, index): MeshService[] => {
    const found = bundles.get(s.image);
    const scone = found ? undefined : sconeImage(s.image);
    if (scone) {
      findings.push({ path: ['services', index, 'image'], message: scone, unsupported: true });
      return [];
    }
    if (!found) {
      const known = [...bundles.keys()];
      findings.push({
        path: ['services', index, 'image'],
        message: `no service manifest applied here builds '${s.image}' (${known.length ? `known: ${known.join(', ')}` : 'none applied yet'})`,
      });
      return [];
    }
    return [
      { name: names[index]!, index, bundle: found.bundle, bundleDir: found.dir, variables: new Map(), dependsOn: [] },
    ];
  });
  findings.push(...envFindings(manifest, names));
  const tolerate = tolerations(manifest, findings);
  if (findings.length > 0) throw located(meshCode(findings), findings, source, file);
  const definers = secretOwners(services, source, file);
  for (const service of services) {
    service.variables = variablesFor(manifest, service.name, namespace, opts.release);
    service.dependsOn = [...new Set(service.bundle.secrets.import.map((s) => definers.get(s)!))];
  }
  return { manifest, source, file, namespace, services, definers, tolerate };
}

function meshCode(findings: Finding[]): 'MANIFEST_UNSUPPORTED' | 'MANIFEST_BUNDLE' | 'MANIFEST_REFERENCE' {
  if (onlyUnsupported(findings)) return 'MANIFEST_UNSUPPORTED';
  return findings.some((f) => f.path[0] === 'services' && !f.unsupported) ? 'MANIFEST_BUNDLE' : 'MANIFEST_REFERENCE';
}

/** A mesh service is named by `name`, or else by its image (the last path part, without the tag). */
function serviceName(name: string | undefined, image: string, index: number, findings: Finding[]): string {
  if (name) return name;
  const derived = (image.split('/').pop() ?? image)
    .split(':')[0]!
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(derived))
    findings.push({
      path: ['services', index],
      message: `cannot derive a service name from image '${image}'; give name:`,
    });
  return derived;
}

function envFindings(m: MeshManifest, names: string[]): Finding[] {
  const findings: Finding[] = names.flatMap((n, i) =>
    names.indexOf(n) !== i ? [{ path: ['services', i, 'name'], message: `service '${n}' is listed twice` }] : [],
  );
  m.env.forEach((entry, i) => {
    if ('service' in entry && !['global', 'helm', ...names].includes(entry.service)) {
      findings.push({
        path: ['env', i, 'service'],
        message: `'${entry.service}' is not a service of this mesh (nor 'global' or 'helm')`,
      });
    }
  });
  return findings;
}

/** Built-ins first (`namespace`, `service_name`, `session`, `release`, the CAS URLs), then the mesh's env layers. */
function variablesFor(
  m: MeshManifest,
  service: string,
  namespace: string,
  release: string | undefined,
): Map<string, string> {
  const vars = new Map<string, string>([
    ['namespace', namespace],
    ['service_name', service],
    ['session', `${namespace}/${service}`],
  ]);
  if (release) vars.set('release', release).set('RELEASE', release);
  m.cas.forEach((c) => {
    vars.set(`cas.${c.name ?? 'cas'}.cas_url`, c.cas_url);
    vars.set(`cas_${c.name ?? 'cas'}_cas_url`, c.cas_url);
  });
  const layer = (scope: string) =>
    m.env.flatMap((e) => ('service' in e ? (e.service === scope ? (e.env ?? []) : []) : scope === 'global' ? [e] : []));
  for (const scope of ['global', 'helm', service]) for (const { name, value } of layer(scope)) vars.set(name, value);
  return vars;
}

/** `policy.tolerate` is a comma-separated list; each entry must be a toleration the CAS knows. */
function tolerations(m: MeshManifest, findings: Finding[]): string[] {
  const list = (m.policy.tolerate ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of list) {
    if (!(TOLERATIONS as readonly string[]).includes(t))
      findings.push({
        path: ['policy', 'tolerate'],
        message: `'${t}' is not a toleration (known: ${TOLERATIONS.join(', ')})`,
      });
  }
  return list;
}

/** Global secret names are unique across the mesh, and every import names a secret another service defines. */
function secretOwners(services: MeshService[], source: Source, file: string): Map<string, string> {
  const owners = new Map<string, string>();
  const problems: Finding[] = [];
  for (const s of services) {
    for (const secret of s.bundle.secrets.global) {
      const owner = owners.get(secret.name);
      if (owner)
        problems.push({
          path: ['services', s.index],
          message: `services '${owner}' and '${s.name}' both define secret '${secret.name}' (names must be unique in a mesh)`,
        });
      else owners.set(secret.name, s.name);
    }
  }
  for (const s of services) {
    for (const name of s.bundle.secrets.import) {
      const owner = owners.get(name);
      if (!owner)
        problems.push({
          path: ['services', s.index],
          message: `service '${s.name}' imports secret '${name}', which no service of the mesh defines in secrets.global`,
        });
      else if (owner === s.name)
        problems.push({ path: ['services', s.index], message: `service '${s.name}' imports its own secret '${name}'` });
    }
  }
  if (problems.length > 0) throw located('MANIFEST_REFERENCE', problems, source, file);
  return owners;
}

/** Services in an order where each comes after those it imports from; a cycle is an error. */
export function startOrder(mesh: ParsedMesh): MeshService[] {
  const order: MeshService[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const byName = new Map(mesh.services.map((s) => [s.name, s]));
  const visit = (s: MeshService, chain: string[]) => {
    if (state.get(s.name) === 'done') return;
    if (state.get(s.name) === 'visiting') {
      throw new ManifestError(
        'MANIFEST_REFERENCE',
        [
          {
            path: 'services',
            message: `services import from each other in a cycle: ${[...chain, s.name].join(' → ')}`,
          },
        ],
        mesh.file,
        { hint: 'a service can start only after those it imports from; break the cycle' },
      );
    }
    state.set(s.name, 'visiting');
    for (const dep of s.dependsOn) visit(byName.get(dep)!, [...chain, s.name]);
    state.set(s.name, 'done');
    order.push(s);
  };
  for (const s of mesh.services) visit(s, []);
  return order;
}
