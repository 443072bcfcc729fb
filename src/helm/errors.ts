import { VeilError, type ErrorCatalogue } from '../errors.js';

export type HelmErrorCode = 'HELM_RELEASE_NAME' | 'HELM_NAME' | 'HELM_NAME_TAKEN' | 'HELM_CAS_ADDRESS' | 'HELM_VALUES';

export const HELM_CATALOGUE: ErrorCatalogue<HelmErrorCode> = {
  HELM_RELEASE_NAME: {
    summary: 'a release name Kubernetes refuses in the names of the Deployments and Services it prefixes',
    hint: 'use lower-case letters, digits and dashes, starting with a letter (at most 53 characters), e.g. demo-1',
  },
  HELM_NAME: {
    summary: 'a name from the values (a service, an alias, a Secret) is not one Kubernetes accepts',
    hint: 'use a DNS-1035 label: lower-case letters, digits and dashes, starting with a letter, at most 63',
  },
  HELM_NAME_TAKEN: {
    summary: 'two objects of a release, or an alias Service and another release, want the same name',
    hint: 'install each release of a mesh into a namespace of its own, or drop the alias from the values',
  },
  HELM_CAS_ADDRESS: {
    summary:
      "the mesh's CAS address is loopback (in any spelling, or IPv4 not written a.b.c.d), which inside a pod " +
      'is the pod itself, not the CAS',
    hint: 'set cas.address to the CAS Service, e.g. --set cas.address=veil-cas.veil-system:8081',
  },
  HELM_VALUES: {
    summary: 'chart values that cannot work together (HA without PostgreSQL or without a shared master key, ...)',
  },
};

/**
 * A chart's values or names Kubernetes or the chart refuses. The chart's templates `fail` with the same
 * message, so `helm install` and Veil's own renderer refuse alike.
 */
export class HelmError extends VeilError<HelmErrorCode> {}
