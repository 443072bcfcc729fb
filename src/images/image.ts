import { sha256 } from './digest.js';
import { ImageError } from './errors.js';
import type { ImageLayout } from './layout.js';
import type { Layer } from './layer.js';
import { MEDIA, type Blob, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from './oci.js';
import { formatReference, type ImageRef } from './reference.js';
import { RegistryClient } from './registry.js';

/** An image with every blob in memory: a manifest, its configuration, and its layers in order. */
export interface Image {
  manifest: Blob;
  config: ImageConfig;
  configBlob: Blob;
  layers: Array<Blob & { diffId: string }>;
}

/** Reproducible images carry no build time. */
const EPOCH = '1970-01-01T00:00:00Z';

export function platform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** Pulls an image (for this machine's platform when the reference names an index). */
export async function pullImage(ref: ImageRef, env?: NodeJS.ProcessEnv): Promise<Image> {
  const client = new RegistryClient(ref.registry, env ? { env } : {});
  let top = await client.manifest(ref.repository, ref.digest ?? ref.tag ?? 'latest');
  if (top.mediaType === MEDIA.index || top.mediaType === MEDIA.dockerList) {
    const chosen = pickPlatform(JSON.parse(top.data.toString('utf8')) as ImageIndex, formatReference(ref));
    top = await client.manifest(ref.repository, chosen.digest);
  }
  const manifest = JSON.parse(top.data.toString('utf8')) as Manifest;
  const configData = await client.blob(ref.repository, manifest.config);
  const config = JSON.parse(configData.toString('utf8')) as ImageConfig;
  const layers = [];
  for (const [i, layer] of manifest.layers.entries()) {
    layers.push({
      descriptor: layer,
      data: await client.blob(ref.repository, layer),
      diffId: config.rootfs.diff_ids[i]!,
    });
  }
  return {
    manifest: {
      descriptor: { mediaType: top.mediaType, digest: top.digest as Descriptor['digest'], size: top.data.length },
      data: top.data,
    },
    config,
    configBlob: { descriptor: manifest.config, data: configData },
    layers,
  };
}

function pickPlatform(index: ImageIndex, name: string): Descriptor {
  const want = platform();
  const found = index.manifests.find(
    (m) => m.platform?.os === want.os && m.platform.architecture === want.architecture,
  );
  if (!found)
    throw new ImageError('IMAGE_NOT_FOUND', `${name} has no ${want.os}/${want.architecture} image`, {
      hint: 'choose a base image built for this platform',
    });
  return found;
}

/** Reads a tagged image back from an OCI layout. */
export function readImage(layout: ImageLayout, tag: string): Image {
  const descriptor = layout.resolve(tag);
  const data = layout.readBlob(descriptor.digest);
  const manifest = JSON.parse(data.toString('utf8')) as Manifest;
  const configData = layout.readBlob(manifest.config.digest);
  const config = JSON.parse(configData.toString('utf8')) as ImageConfig;
  const layers = manifest.layers.map((l, i) => ({
    descriptor: l,
    data: layout.readBlob(l.digest),
    diffId: config.rootfs.diff_ids[i]!,
  }));
  return {
    manifest: { descriptor: { ...descriptor, annotations: {} }, data },
    config,
    configBlob: { descriptor: manifest.config, data: configData },
    layers,
  };
}

/**
 * A new image: the base's layers (or none: `scratch`), then `add`, with the base configuration changed by
 * `patch`. Same inputs, same bytes: keys in fixed order, no timestamps.
 */
export function assembleImage(
  base: Image | undefined,
  add: Layer[],
  patch: (config: ImageConfig['config']) => ImageConfig['config'],
  history: string[],
): Image {
  const baseConfig: ImageConfig = base?.config ?? {
    ...platform(),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
  };
  const layers = [
    ...(base?.layers ?? []).map((l) => ({
      ...l,
      descriptor: { mediaType: MEDIA.layerGzip, digest: l.descriptor.digest, size: l.descriptor.size },
    })),
    ...add,
  ];
  const config: ImageConfig = {
    architecture: baseConfig.architecture,
    os: baseConfig.os,
    created: EPOCH,
    config: patch({ ...baseConfig.config }),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId as Descriptor['digest']) },
    history: [...(baseConfig.history ?? []), ...history.map((created_by) => ({ created: EPOCH, created_by }))],
  };
  const configData = Buffer.from(JSON.stringify(config));
  const configBlob = {
    descriptor: { mediaType: MEDIA.config, digest: sha256(configData), size: configData.length },
    data: configData,
  };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: configBlob.descriptor,
    layers: layers.map((l) => l.descriptor),
  };
  const manifestData = Buffer.from(JSON.stringify(manifest));
  return {
    manifest: {
      descriptor: { mediaType: MEDIA.manifest, digest: sha256(manifestData), size: manifestData.length },
      data: manifestData,
    },
    config,
    configBlob,
    layers,
  };
}

export function writeImage(layout: ImageLayout, tag: string, image: Image): void {
  layout.init();
  for (const layer of image.layers) layout.writeBlob(layer.data);
  layout.writeBlob(image.configBlob.data);
  layout.writeBlob(image.manifest.data);
  layout.tag(tag, {
    mediaType: image.manifest.descriptor.mediaType,
    digest: image.manifest.descriptor.digest,
    size: image.manifest.descriptor.size,
  });
}

/** Pushes the blobs the registry lacks, then the manifest under the reference's tag. */
export async function pushImage(
  ref: ImageRef,
  image: Image,
  opts: { env?: NodeJS.ProcessEnv; progress?: (line: string) => void } = {},
): Promise<void> {
  const client = new RegistryClient(ref.registry, opts.env ? { env: opts.env } : {});
  for (const blob of [...image.layers, image.configBlob]) {
    const result = await client.pushBlob(ref.repository, blob.descriptor, blob.data);
    opts.progress?.(
      `${result === 'pushed' ? 'pushed' : 'already there'} ${blob.descriptor.digest.slice(0, 19)} (${(blob.descriptor.size / 1e6).toFixed(1)} MB)`,
    );
  }
  await client.pushManifest(
    ref.repository,
    ref.tag ?? image.manifest.descriptor.digest,
    image.manifest.descriptor.mediaType,
    image.manifest.data,
  );
}
