import { ManifestError } from './errors.js';
import { readYaml } from './source.js';

/** `kind:` of a manifest, to dispatch `veil apply -f` (SCONE's apply does the same). */
export function manifestKind(text: string, file: string): 'genservice' | 'mesh' {
  const value = readYaml(text, file).value as { kind?: unknown } | null;
  const kind = value && typeof value === 'object' ? value.kind : undefined;
  if (kind === 'genservice' || kind === 'mesh') return kind;
  throw new ManifestError(
    'MANIFEST_SHAPE',
    [{ path: 'kind', message: kind === undefined ? 'is required' : `'${String(kind)}' is not a manifest kind` }],
    file,
    {
      hint: "a service manifest has 'kind: genservice', a mesh manifest 'kind: mesh' (both apiVersion: scone/5.8)",
    },
  );
}
