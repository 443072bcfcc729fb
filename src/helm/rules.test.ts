import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HelmError, chartValues, checkRelease, inClusterCasAddress, isLoopback, renderManifests } from './index.js';
import { CHECKS_TEMPLATE } from './templates.js';

const values = chartValues({
  casAddress: 'veil-cas:8081',
  imagePullSecrets: [],
  services: [{ name: 'api', image: 'r/api:1', configId: 'p/api/x', port: 80, memoryVolumes: [], aliases: ['api-tls'] }],
});

/** Spellings of the machine itself a resolver accepts (inet_aton's numeric forms, IPv6's, a name's root dot). */
const LOOPBACK_SPELLINGS = [
  'LOCALHOST:8081',
  'localhost.:8081',
  'Api.LocalHost.:1',
  'ip6-localhost:8081',
  '[::ffff:127.0.0.1]:8081',
  '[::FFFF:7F00:1]:8081',
  '[0:0:0:0:0:ffff:0.0.0.0]:8081',
  '[0::1]:8081',
  '[::1%lo]:8081',
  '[::]:8081',
  '2130706433:8081',
  '127.1:8081',
  '0x7f.1:8081',
  '017700000001:8081',
  '0:8081',
  '0.0.0.0:8081',
  '0.1.2.3:8081',
];

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
    for (const a of LOOPBACK_SPELLINGS) assert.ok(isLoopback(a), a);
    for (const a of ['10.1:8081', '167772161:8081', '[::ffff:10.0.0.1]:8081', '[2001:db8::1]:8081', '[::10]:1'])
      assert.ok(!isLoopback(a), a);
    assert.deepEqual(inClusterCasAddress('cas.example:8081'), { address: 'cas.example:8081' });
    const moved = inClusterCasAddress('127.0.0.1:9000');
    assert.equal(moved.address, 'veil-cas:9000');
    assert.match(moved.warning ?? '', /127\.0\.0\.1:9000 is loopback.*--set cas\.address=/);
    const render = (address: string) => () =>
      renderManifests({ ...values, cas: { address, fingerprint: null } }, 'demo');
    assert.throws(render('localhost:8081'), refusedWith('HELM_CAS_ADDRESS', /"localhost:8081" is loopback/));
    for (const a of LOOPBACK_SPELLINGS) assert.throws(render(a), refusedWith('HELM_CAS_ADDRESS', /loopback/), a);
    assert.throws(render('10.1:8081'), refusedWith('HELM_CAS_ADDRESS', /"10.1:8081" is an IPv4 address not written/));
    for (const a of ['10.0.0.1:8081', 'cas.example.:8081', '[2001:db8::1]:8081', '[::ffff:10.0.0.1]:8081'])
      assert.equal(render(a)().length, 3, a);
    assert.equal(inClusterCasAddress('127.1:9000').address, 'veil-cas:9000', 'a mesh on 127.1 gets the Service');
  });
});
