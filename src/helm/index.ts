export { writeChart, writeManifests } from './chart.js';
export { renderManifests } from './render.js';
export { chartValues, type ChartValues, type ChartService, type ServiceValues } from './values.js';
export { chartServices, pullSecrets } from './from-mesh.js';
export { casChartValues, renderCasManifests, writeCasChart, type CasChartValues } from './cas-chart.js';
