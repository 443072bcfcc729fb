import { posix } from 'node:path';
import { stringify } from 'yaml';
import { loadSecretValues, loadShieldKey } from './bundle.js';
import { ManifestError } from './errors.js';
import type { MeshService, ParsedMesh } from './mesh.js';
import { sessionSecret } from './service.js';
import { renderTemplate } from './template.js';

export interface GeneratedSession {
  name: string;
  /** The session as uploaded (with the shield key and explicit secret values). */
  session: Record<string, unknown>;
  /** The same with every secret value replaced by a $VEIL_… variable: what is written to target/policies. */
  redacted: Record<string, unknown>;
  /** Values for those variables (never written): `veil session create -e NAME=VALUE`. */
  variables: Record<string, string>;
}

export interface SessionOptions {
  keysDir: string;
  /**
   * `debug` turns hardware attestation off (`mode: none`: simulation evidence is accepted, what `veil up` needs
   * without a TEE) and adds the debug-mode toleration (debug enclaves and VMs, where there is a TEE).
   */
  mode: 'production' | 'debug';
  /**
   * Debug mode: the hosts whose simulation evidence each service accepts (`platforms`, host IDs as `veil host
   * id` prints them); a CAS refuses simulation from any other host, and from every host when none is listed.
   */
  platforms?: readonly string[] | undefined;
  /**
   * `local`: services run from their bundles on this machine (`veil up`). `image`: they run from the images
   * `veil apply -f service.yaml` built (Kubernetes): paths as in the image, the measurement of the program in it.
   */
  layout?: 'local' | 'image';
}

/** In images the shielded copy of a directory D is at this prefix + D (see runtime/container.ts). */
const IMAGE_SHIELD_ROOT = '/opt/veil/shield';

/** One session per service, named `<namespace>/<service>`, plus the namespace session that holds them. */
export function generateSessions(mesh: ParsedMesh, opts: SessionOptions): GeneratedSession[] {
  const missing: string[] = [];
  const sessions = mesh.services.map((s) => serviceSession(mesh, s, opts, missing));
  if (missing.length > 0) {
    throw new ManifestError(
      'MANIFEST_VARIABLE',
      missing.map((message) => ({ path: '', message })),
      mesh.file,
    );
  }
  const ns = {
    name: mesh.namespace,
    version: '0.3',
    access_policy: { read: ['CREATOR'], update: ['CREATOR'], create_sessions: ['CREATOR'] },
  };
  return [{ name: mesh.namespace, session: ns, redacted: ns, variables: {} }, ...sessions];
}

function serviceSession(mesh: ParsedMesh, s: MeshService, opts: SessionOptions, missing: string[]): GeneratedSession {
  const b = s.bundle;
  const render = (text: string, where: string) => {
    const r = renderTemplate(text, (name) => s.variables.get(name));
    for (const name of r.missing) {
      missing.push(
        `service '${s.name}': ${where} uses {{${name}}}, which has no value in the mesh's env and no default`,
      );
    }
    return r.text;
  };
  const environment: Record<string, string> = {};
  for (const v of b.environment.global) {
    const value = s.variables.get(v.name) ?? v.value;
    if (value === undefined)
      missing.push(
        `service '${s.name}': global variable ${v.name} has no value (set it in the mesh's env for '${s.name}', helm or global)`,
      );
    else environment[v.name] = render(value, `environment.global ${v.name}`);
  }
  for (const v of b.environment.local) environment[v.name] = render(v.value, `environment.local ${v.name}`);
  const local = opts.layout === 'image' ? imagePaths(s) : localPaths(s);
  const variables: Record<string, string> = {};
  const service: Record<string, unknown> = {
    name: posix.basename(b.command[0]!),
    image_name: s.name,
    mrenclaves: [opts.layout === 'image' ? builtImage(s).measurement : b.measurement],
    command: b.command.map((arg, i) => local.rebase(render(arg, `build.command[${i}]`))),
    environment,
    pwd: local.pwd,
    ...(opts.mode === 'debug' && opts.platforms?.length ? { platforms: [...opts.platforms] } : {}),
  };
  const redactedService = { ...service };
  if (b.shield) {
    const key = loadShieldKey(opts.keysDir, b.shield.tag, s.name);
    Object.assign(service, { fspf_path: posix.join(local.shield, 'fs.fspf'), fspf_key: key, fspf_tag: b.shield.tag });
    Object.assign(redactedService, {
      fspf_path: service['fspf_path'],
      fspf_key: '$VEIL_FSPF_KEY',
      fspf_tag: b.shield.tag,
    });
    variables['VEIL_FSPF_KEY'] = key;
  }
  const values = loadSecretValues(opts.keysDir, b, s.name);
  const secrets = b.secrets.global.map((secret): Record<string, unknown> => {
    const value = values.get(secret.name);
    const spec = sessionSecret({ ...secret, ...(value !== undefined ? { value } : {}) });
    return { ...renderSecret(spec, render), export: [{ namespace: mesh.namespace }] };
  });
  const redactedSecrets = secrets.map((secret, i) => {
    if (secret['value'] === undefined) return secret;
    variables[`VEIL_SECRET_${i}`] = String(secret['value']);
    return { ...secret, value: `$VEIL_SECRET_${i}` };
  });
  const imports = b.secrets.import.map((name) => ({
    name,
    import: { session: `${mesh.namespace}/${mesh.definers.get(name)}`, secret: name },
  }));
  const base = {
    name: `${mesh.namespace}/${s.name}`,
    version: '0.3',
    images: [
      {
        name: s.name,
        injection_files: b.injection_files.map((f) => ({
          path: f.path,
          content: render(f.content, `injection_files ${f.path}`),
        })),
      },
    ],
    security: {
      attestation: {
        ...(opts.mode === 'debug' ? { mode: 'none' } : {}),
        tolerate: tolerate(mesh, opts),
        ...ignoreAdvisories(mesh),
      },
    },
  };
  return {
    name: base.name,
    session: { ...base, services: [service], secrets: [...secrets, ...imports] },
    redacted: { ...base, services: [redactedService], secrets: [...redactedSecrets, ...imports] },
    variables,
  };
}

/** `{{VAR}}` in a secret's strings (common_name, dns, issuer…) is rendered like any other text. */
function renderSecret(
  secret: Record<string, unknown>,
  render: (t: string, where: string) => string,
): Record<string, unknown> {
  const name = String(secret['name']);
  return Object.fromEntries(
    Object.entries(secret).map(([k, v]) => {
      if (typeof v === 'string') return [k, render(v, `secret ${name}.${k}`)];
      if (Array.isArray(v)) return [k, v.map((x) => (typeof x === 'string' ? render(x, `secret ${name}.${k}`) : x))];
      return [k, v];
    }),
  );
}

/**
 * Locally the shielded tree stands in for the image's working directory: `pwd`, and every argument that
 * names a path under it, point into the bundle instead (a program started with `python3 /app/api.py`
 * finds its code). Without a shield the manifest's pwd is used as it is.
 */
function localPaths(s: MeshService): { pwd: string; shield: string; rebase(arg: string): string } {
  const image = s.bundle.pwd;
  if (!s.bundle.shield) return { pwd: image, shield: image, rebase: (arg) => arg };
  const here = posix.join(s.bundleDir, s.bundle.shield.dir);
  return {
    pwd: here,
    shield: here,
    rebase: (arg) =>
      arg === image ? here : image !== '/' && arg.startsWith(`${image}/`) ? here + arg.slice(image.length) : arg,
  };
}

/** In the image the program sees the manifest's paths; the shield sits under IMAGE_SHIELD_ROOT. */
function imagePaths(s: MeshService): { pwd: string; shield: string; rebase(arg: string): string } {
  builtImage(s);
  const pwd = s.bundle.pwd;
  return { pwd, shield: `${IMAGE_SHIELD_ROOT}${pwd === '/' ? '' : pwd}`, rebase: (arg) => arg };
}

function builtImage(s: MeshService): NonNullable<MeshService['bundle']['built']> {
  if (!s.bundle.built) {
    throw new ManifestError(
      'MANIFEST_BUNDLE',
      [{ path: '', message: `service '${s.name}' has no image built (${s.bundle.image})` }],
      s.name,
      {
        hint: 'run veil apply -f service.yaml for it without --no-image, or use the local mesh (veil up)',
      },
    );
  }
  return s.bundle.built;
}

function tolerate(mesh: ParsedMesh, opts: SessionOptions): string[] {
  return [...new Set([...(opts.mode === 'debug' ? ['debug-mode'] : []), ...mesh.tolerate])];
}

function ignoreAdvisories(mesh: ParsedMesh): { ignore_advisories?: string | string[] } {
  const value = mesh.manifest.policy.ignore_advisories?.trim();
  if (!value) return {};
  return {
    ignore_advisories:
      value === '*'
        ? '*'
        : value
            .split(',')
            .map((a) => a.trim())
            .filter(Boolean),
  };
}

/** A session as YAML for target/policies (the redacted form), with a header saying how to upload it. */
export function policyText(generated: GeneratedSession): string {
  const vars = Object.keys(generated.variables);
  const header = [
    `# Session ${generated.name}, generated by 'veil apply -f mesh.yaml'.`,
    ...(vars.length > 0
      ? [
          `# Secret values are left out; upload with: veil session create -f <this file> ${vars.map((v) => `-e ${v}=...`).join(' ')}`,
        ]
      : []),
  ];
  return `${header.join('\n')}\n${stringify(generated.redacted, { lineWidth: 0 })}`;
}
