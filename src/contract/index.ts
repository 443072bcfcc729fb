export * from './attest.js';
export * from './cas-api.js';
export * from './evidence.js';
export * from './issues.js';
export * from './remote.js';
export * from './encrypted-session.js';
export * from './audit.js';
export * from './audit-api.js';
