import { VeilError } from '../errors.js';

export type ImageErrorCode =
  | 'IMAGE_REFERENCE'
  | 'IMAGE_REGISTRY'
  | 'IMAGE_AUTH'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_DIGEST'
  | 'IMAGE_FORMAT'
  | 'IMAGE_PROGRAM';

/** Building, pulling or pushing an image failed; never carries a credential. */
export class ImageError extends VeilError<ImageErrorCode> {}
