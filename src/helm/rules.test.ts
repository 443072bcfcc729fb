import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HelmError, chartValues, checkRelease, inClusterCasAddress, isLoopback, renderManifests } from './index.js';
import { CHECKS_TEMPLATE } from './templates.js';

const values = chartValues({
  casAddress: 'veil-cas:8081',
  imagePullSecrets: [],
  services: [{ name: 'api', image: 'r/api:1', configId: 'p/api/x', port: 80, memoryVolumes: [], aliases: ['api-tls'] }],
});

const refusedWith = (code: string, text: RegExp) => (err: unknown) =>
  err instanceof HelmError && err.code === code && text.test(err.message) && Boolean(err.hint);

describe('the charts’ rules', () => {
  it('take a release that every name it prefixes can carry, and refuse the others saying why', () => {
    for (const ok of ['demo', 'veil', 'demo-1', `r${'x'.repeat(52)}`]) checkRelease(ok);
    for (const bad of ['Demo_1', 'a.b', '1demo', 'demo-', '', `r${'x'.repeat(53)}`])
      assert.throws(() => checkRelease(bad), refusedWith('HELM_RELEASE_NAME', /DNS-1035/), bad);
  });

  it('refuse an alias Service that another release of the namespace owns (the certificates name it)', () => {
    const cluster = (owner: string | undefined) => ({ namespace: 'patients', serviceOwner: () => owner });
    assert.throws(
      () => renderManifests(values, 'demo', cluster('other')),
      refusedWith('HELM_NAME_TAKEN', /"api-tls" .*belongs to release "other" in namespace "patients"/),
    );
    assert.equal(renderManifests(values, 'demo', cluster('demo')).length, 3, 'its own Service is an upgrade');
    assert.equal(renderManifests(values, 'demo', cluster(undefined)).length, 3);
    assert.match(CHECKS_TEMPLATE, /lookup "v1" "Service" \$\.Release\.Namespace \$n/, 'the chart asks the cluster');
  });

  it('see loopback CAS addresses, and give the pods the CAS chart’s Service instead, with a warning', () => {
    for (const a of ['localhost:8081', '127.0.0.1:8081', '127.1.2.3:9', '[::1]:8081', '0.0.0.0:8081', 'x.localhost:1'])
      assert.ok(isLoopback(a), a);
    for (const a of ['cas.example:8081', 'localhost.example:8081', '10.0.0.1:8081', 'veil-cas:8081'])
      assert.ok(!isLoopback(a), a);
    assert.deepEqual(inClusterCasAddress('cas.example:8081'), { address: 'cas.example:8081' });
    const moved = inClusterCasAddress('127.0.0.1:9000');
    assert.equal(moved.address, 'veil-cas:9000');
    assert.match(moved.warning ?? '', /127\.0\.0\.1:9000 is loopback.*--set cas\.address=/);
    assert.throws(
      () => renderManifests({ ...values, cas: { address: 'localhost:8081', fingerprint: null } }, 'demo'),
      refusedWith('HELM_CAS_ADDRESS', /"localhost:8081" is loopback/),
    );
  });
});
