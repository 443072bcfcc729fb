export { writeChart, writeManifests } from './chart.js';
export { aliasCollisionNote, aliasServices, renderManifests, type ClusterView } from './render.js';
export { chartValues, type ChartValues, type ChartService, type ServiceValues } from './values.js';
export { chartServices, inClusterCasAddress, pullSecrets } from './from-mesh.js';
export { casChartValues, renderCasManifests, writeCasChart, type CasChartValues } from './cas-chart.js';
export { HelmError, type HelmErrorCode } from './errors.js';
export { checkRelease, isLoopback } from './rules.js';
