export { ImageError, type ImageErrorCode } from './errors.js';
export { buildServiceImage, SHIELD_ROOT, type BuiltImage, type ServiceImageInput } from './service-image.js';
export { assembleImage, pullImage, pushImage, readImage, writeImage, type Image } from './image.js';
export { buildLayer, type Layer, type LayerEntry } from './layer.js';
export { ImageLayout } from './layout.js';
export { parseReference, formatReference, registryUrl, type ImageRef } from './reference.js';
export { RegistryClient } from './registry.js';
export { runtimeEntrypoint, RUNTIME_DIR } from './runtime-layer.js';
export { programInImage } from './image-files.js';
