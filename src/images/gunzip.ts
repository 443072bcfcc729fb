import { gunzipSync } from 'node:zlib';
import { ImageError } from './errors.js';

/** Layers are unpacked in memory; a hostile one that inflates beyond this is refused instead of exhausting it. */
export const MAX_LAYER_BYTES = 2 * 1024 ** 3;

export function gunzipLayer(layer: Buffer): Buffer {
  try {
    return gunzipSync(layer, { maxOutputLength: MAX_LAYER_BYTES });
  } catch (err) {
    const big = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
    throw new ImageError(
      'IMAGE_FORMAT',
      big
        ? `a layer unpacks to more than ${MAX_LAYER_BYTES / 1024 ** 3} GiB`
        : `a layer is not valid gzip (${(err as Error).message})`,
      {
        hint: big
          ? 'Veil squashes and measures images in memory; use a smaller image'
          : 'the image is damaged; pull or build it again',
        cause: err,
      },
    );
  }
}
