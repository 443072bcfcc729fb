export { ShieldError, type ShieldErrorCode } from './errors.js';
export { encryptTree } from './encrypt.js';
export { decryptTree, THREADS_FROM, type Threads } from './decrypt.js';
export { META_FILE } from './format.js';
export { plainTreeMac } from './mac.js';
