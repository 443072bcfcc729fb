import { unsupportedMessage } from '../policy/unsupported.js';

/**
 * SCONE's curated images (`registry.scontain.com/…`; the tutorials write `$SCONECTL_REPO/redis:${VERSION}`, with
 * SCONECTL_REPO=registry.scontain.com/sconectl) carry their service manifest, policy and secrets templates inside
 * the image, where Veil cannot read them: a mesh naming one is told which Veil service manifest to apply instead.
 */
const SCONE_IMAGE = /^(?:registry\.scontain\.com\/|\$\{?SCONECTL_REPO\}?\/)/;

/** Veil's service manifests for SCONE's curated images, by the image's name (the last path part, no tag). */
const VEIL_MANIFESTS: Record<string, string> = {
  redis: "examples/flask-redis/redis/service.yaml (Debian's redis-server, TLS only, certificates from the CAS)",
};

/** Why the mesh cannot use `image`, when it is one of SCONE's curated images; undefined for any other image. */
export function sconeImage(image: string): string | undefined {
  if (!SCONE_IMAGE.test(image)) return undefined;
  const name = (image.split('/').pop() ?? '').split(/[:@]/)[0]!;
  const instead = VEIL_MANIFESTS[name];
  const todo = instead
    ? `apply Veil's service manifest ${instead} with 'veil apply -f', and name its build.to here`
    : "write a service manifest (kind: genservice) for it, apply it with 'veil apply -f', and name its build.to here";
  const why = `it is a SCONE-provided image, whose service manifest, policy and secrets templates live inside it; ${todo}`;
  return unsupportedMessage(`image '${image}'`, why);
}
