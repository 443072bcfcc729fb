import { VeilError } from '../errors.js';

export type MeshErrorCode = 'MESH_NOT_READY' | 'MESH_SERVICE_ENDED' | 'MESH_STOPPED' | 'MESH_ADDRESS';

/** Why the local mesh did not come up (or fell apart), with the service's last log lines. */
export class MeshError extends VeilError<MeshErrorCode> {}
