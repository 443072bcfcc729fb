export { RuntimeError, type RuntimeErrorCode } from './errors.js';
export { obtainConfig, pinnedAttestation, casUrl, type RuntimeConfig, type CasTrust } from './attest.js';
export { attestCas, type PinnedCas } from './cas-identity.js';
export { launch, namespacesWork, startProgram, type LaunchOptions, type Running } from './launch.js';
export { Supervisor, RESTART_GRACE_MS } from './renewal.js';
export { realTimers, RENEW_MARGIN_MS } from './renewal-rules.js';
export { rewriteInjected } from './rewrite.js';
export { encodePlan, launchPlan, tmpfsOptions, type Step } from './plan.js';
export { openProgram, resolveProgram, RUNTIME_ROOT, type OpenedProgram } from './program.js';
export { launchInContainer, readMounts, CONTAINER_SHIELD_ROOT } from './container.js';
export {
  chooseEvidenceSource,
  simulationSource,
  tsmSource,
  type EvidenceSource,
  type EvidenceMode,
  type ProgramIdentity,
} from './evidence-source.js';
export { HOST_KEY_ENV, hostKeyPath, loadHostKey, type HostKey } from './host-key.js';
