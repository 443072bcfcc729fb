import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, type Digest } from './digest.js';
import { ImageError } from './errors.js';
import { MEDIA, type Descriptor, type ImageIndex } from './oci.js';

/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`), as skopeo and umoci read it
 * (`oci:<dir>:<tag>`). Blobs are content-addressed, so writing one twice is harmless.
 */
export class ImageLayout {
  constructor(readonly dir: string) {}

  init(): void {
    mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
    if (!existsSync(join(this.dir, 'index.json')))
      this.writeIndex({ schemaVersion: 2, mediaType: MEDIA.index, manifests: [] });
  }

  writeBlob(data: Buffer): Digest {
    const digest = sha256(data);
    const path = this.blobPath(digest);
    if (!existsSync(path)) {
      writeFileSync(`${path}.tmp`, data);
      renameSync(`${path}.tmp`, path);
    }
    return digest;
  }

  readBlob(digest: string): Buffer {
    const path = this.blobPath(digest);
    if (!existsSync(path))
      throw new ImageError('IMAGE_NOT_FOUND', `blob ${digest} is not in the layout ${this.dir}`, {
        hint: 'the layout is incomplete; build the image again',
      });
    const data = readFileSync(path);
    if (sha256(data) !== digest)
      throw new ImageError('IMAGE_DIGEST', `blob ${digest} in ${this.dir} is corrupt`, {
        hint: 'delete the layout and build again',
      });
    return data;
  }

  /** Points `tag` at a manifest (replacing what the tag named before). */
  tag(tag: string, manifest: Descriptor): void {
    const index = this.readIndex();
    const manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
    manifests.push({ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } });
    this.writeIndex({ ...index, manifests });
  }

  resolve(tag: string): Descriptor {
    const found = this.readIndex().manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
    if (!found)
      throw new ImageError('IMAGE_NOT_FOUND', `no image tagged '${tag}' in the layout ${this.dir}`, {
        hint: 'name a tag the layout holds (see its index.json)',
      });
    return found;
  }

  /** Removes blobs no tag reaches any more (a rebuilt image leaves its old layers behind otherwise). */
  prune(reachable: Set<string>): void {
    for (const m of this.readIndex().manifests) reachable.add(m.digest);
    const dir = join(this.dir, 'blobs', 'sha256');
    for (const name of existsSync(dir) ? readdirSync(dir) : [])
      if (!reachable.has(`sha256:${name}`)) rmSync(join(dir, name), { force: true });
  }

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  }

  private readIndex(): ImageIndex {
    return JSON.parse(readFileSync(join(this.dir, 'index.json'), 'utf8')) as ImageIndex;
  }

  private writeIndex(index: ImageIndex): void {
    writeFileSync(join(this.dir, 'index.json'), `${JSON.stringify(index)}\n`);
  }
}
