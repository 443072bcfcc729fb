import { VeilError, type ErrorCatalogue } from '../errors.js';

export type MeshErrorCode = 'MESH_NOT_READY' | 'MESH_SERVICE_ENDED' | 'MESH_STOPPED' | 'MESH_ADDRESS';

export const MESH_CATALOGUE: ErrorCatalogue<MeshErrorCode> = {
  MESH_NOT_READY: { summary: 'a service did not listen on any port in time' },
  MESH_SERVICE_ENDED: { summary: 'a service ended before it was ready' },
  MESH_STOPPED: { summary: 'veil up was stopped by a signal before the mesh was up' },
  MESH_ADDRESS: { summary: 'no free loopback address could be found for the services' },
};

/** Why the local mesh did not come up (or fell apart), with the service's last log lines. */
export class MeshError extends VeilError<MeshErrorCode> {}
