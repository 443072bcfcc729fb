export { ShieldError, type ShieldErrorCode } from './errors.js';
export { encryptTree } from './encrypt.js';
export { decryptTree } from './decrypt.js';
export { META_FILE } from './format.js';
export { plainTreeMac } from './mac.js';
