import { VeilError, type ErrorCatalogue } from '../errors.js';

export type ImageErrorCode =
  | 'IMAGE_REFERENCE'
  | 'IMAGE_REGISTRY'
  | 'IMAGE_AUTH'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_DIGEST'
  | 'IMAGE_FORMAT'
  | 'IMAGE_PROGRAM'
  | 'IMAGE_HOST_FILE'
  | 'IMAGE_ENGINE'
  | 'IMAGE_BUILD_STEP'
  | 'IMAGE_BUILD_CHANGES';

export const IMAGE_CATALOGUE: ErrorCatalogue<ImageErrorCode> = {
  IMAGE_REFERENCE: { summary: 'an image reference is not valid, or names no base image' },
  IMAGE_REGISTRY: { summary: 'the registry cannot be reached or answered with an error' },
  IMAGE_AUTH: { summary: 'the registry refused the credentials, or the Docker config holding them is unreadable' },
  IMAGE_NOT_FOUND: { summary: 'the image, a platform of it, or a blob does not exist' },
  IMAGE_DIGEST: { summary: 'content does not have the digest it was asked for (altered or corrupt)' },
  IMAGE_FORMAT: { summary: 'a layer is not valid gzip, or unpacks to more than Veil holds in memory' },
  IMAGE_PROGRAM: { summary: 'the image lacks the program or directory named, or it cannot be shielded as asked' },
  IMAGE_HOST_FILE: {
    summary: 'a host file for a base image is missing or unreadable, or a library it links is missing',
  },
  IMAGE_ENGINE: {
    summary: 'the container engine for build.run and requirements is missing, unknown, or failed to run the base image',
  },
  IMAGE_BUILD_STEP: { summary: 'a build.run step or the requirements install exited non-zero in the base image' },
  IMAGE_BUILD_CHANGES: {
    summary: "build.run or requirements changed a path that Veil's layers or the decrypted application replace",
  },
};

/** Building, pulling or pushing an image failed; never carries a credential. */
export class ImageError extends VeilError<ImageErrorCode> {}
