export { ManifestError, type ManifestErrorCode, type ManifestIssue } from './errors.js';
export { parseServiceManifest, type ParsedService } from './service.js';
export { parseMeshManifest, startOrder, type ParsedMesh, type MeshService } from './mesh.js';
export { buildBundle, bundlesByImage, recordImage, SERVICE_PATH, type Bundle } from './bundle.js';
export { generateSessions, policyText, type GeneratedSession } from './sessions.js';
export {
  applyMesh,
  type AppliedSession,
  type MeshPlan,
  type SessionStore,
  type UploadEncryption,
} from './apply-mesh.js';
export { renderTemplate, templateVariables } from './template.js';
export { splitCommand } from '../policy/command.js';
export { manifestKind } from './kind.js';
