export { PolicyError, type PolicyErrorCode, type PolicyIssue } from './errors.js';
export { parseSession, parseWrittenSession, resolveSession, formatPath } from './parse.js';
export { fillFragments, type FillOptions } from './fragments.js';
export { REDACTED } from './schema.js';
export { SECRET_FIELD_PATHS, redactSession, restoreRedacted } from './secret-fields.js';
export { splitCommand } from './command.js';
export { SESSION_LIMITS } from './limits.js';
export {
  accessEntries,
  type AccessEntry,
  type LeafEntry,
  type Permission,
  type SignerKeyType,
} from './access-entries.js';
export {
  sessionHash,
  importsFragments,
  platformSecretValues,
  serializeSession,
  sessionNamespace,
  canonicalJson,
} from './hash.js';
export {
  findPlaceholders,
  renderPlaceholders,
  isKnownSuffix,
  suffixFitsKind,
  PLACEHOLDER_SUFFIXES,
  type Placeholder,
} from './placeholders.js';
export { substituteVariables } from './template.js';
export { sessionJsonSchema } from './json-schema.js';
export { placeholderSites } from './references.js';
export type {
  AccessPolicy,
  ExportTarget,
  Image,
  InjectionFile,
  KeyType,
  Secret,
  SecretKind,
  Security,
  Service,
  Session,
  WrittenSession,
} from './schema.js';
export { unsupported, unsupportedValues, unsupportedMessage, unsupportedConstruct } from './unsupported.js';
